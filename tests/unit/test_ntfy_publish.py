"""ntfy publish requests to Publications: the three forms, every alias, every refusal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers.ntfy import FORM, RESERVED, publish, refused
from xmpp_post.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from xmpp_post.fronts.ntfy import Publication, is_topic_path

# --- paths and methods ---------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/alerts", "/a", "/A-b_9", "/" + "x" * 64,
                                  "/alerts/publish", "/alerts/send", "/alerts/trigger"])
def test_ntfy_paths(path: str) -> None:
    assert is_topic_path(path, RESERVED)


@pytest.mark.parametrize("path", ["", "/msg", "/MSG", "/healthz", "/metrics", "/hooks",
                                  "/openapi.json", "/msg/publish", "/" + "x" * 65,
                                  "/alerts/", "/alerts/json", "/alerts/publish/x",
                                  "/a.b", "/a b", "/ä", "//alerts", "/alerts/Publish"])
def test_other_paths_are_not_ntfy(path: str) -> None:
    assert not is_topic_path(path, RESERVED)


def test_a_path_that_is_not_ntfy_is_404() -> None:
    refused(NotFound, "not_found", "/msg")


@pytest.mark.parametrize(("path", "method", "allow"), [
    ("/alerts", "GET", "PUT, POST"), ("/alerts", "DELETE", "PUT, POST"),
    ("/", "GET", "PUT, POST"), ("/alerts/publish", "PUT", "GET, POST"),
])
def test_wrong_methods_are_405_with_allow(path: str, method: str, allow: str) -> None:
    error = refused(MethodNotAllowed, "method_not_allowed", path, method=method)
    assert isinstance(error, MethodNotAllowed)
    assert ", ".join(error.allowed) == allow  # the HTTP edge renders it as Allow


@pytest.mark.parametrize("method", ["POST", "PUT", "post"])
def test_body_to_a_topic_is_the_message(method: str) -> None:
    pub = publish(method=method, body=b"  Backup successful \xf0\x9f\x98\x80\n")
    assert pub == Publication(topic="alerts", message="Backup successful 😀")


@pytest.mark.parametrize("content_type", ["", FORM, "text/plain", "application/json",
                                          "application/octet-stream", "image/png"])
def test_the_body_is_the_message_whatever_its_type(content_type: str) -> None:
    assert publish(body=b'{"a": 1}', content_type=content_type).message == '{"a": 1}'


def test_declared_charset_is_honoured() -> None:
    assert publish(body="Äpfel".encode("latin-1"),
                   content_type="text/plain; charset=ISO-8859-1").message == "Äpfel"
    refused(UnsupportedMediaType, "unsupported_charset",
            body=b"x", content_type="text/plain; charset=klingon")
    refused(BadRequest, "invalid_encoding", body=b"\xff\xfe\xfa",
            content_type="text/plain; charset=us-ascii")


def test_a_charset_that_is_not_a_text_encoding_and_a_byte_order_mark() -> None:
    for charset in ("rot13", "base64", "zlib"):
        refused(UnsupportedMediaType, "unsupported_charset", body=b"aGk=",
                content_type=f"text/plain; charset={charset}")
    assert publish(body=b"\xef\xbb\xbfBackup done").message == "Backup done"


def test_empty_message_is_triggered() -> None:
    assert publish(body=b"  \n").message == "triggered"


@pytest.mark.parametrize("name", ["publish", "send", "trigger"])
def test_webhook_form(name: str) -> None:
    pub = publish(f"/hook_1/{name}", method="GET",
                  query=[("message", "Build done"), ("title", "CI"), ("tags", "tada")])
    assert (pub.topic, pub.message, pub.title, pub.tags) == ("hook_1", "Build done", "CI",
                                                             ("tada",))
    assert publish(f"/hook_1/{name}", method="GET").message == "triggered"
    assert publish(f"/hook_1/{name}", method="POST", body=b"from the body").message \
        == "from the body"


def test_escaped_newlines_in_a_header_message() -> None:
    assert publish(headers={"X-Message": r"one\ntwo"}).message == "one\ntwo"


def test_the_body_wins_over_a_message_header() -> None:
    assert publish(headers={"Message": "header"}, body=b"body").message == "body"


# --- every alias, as a header and as a query parameter --------------------------------

ALIASES: list[tuple[str, list[str], str, str, object]] = [
    # field, names, value given, attribute, expected
    ("message", ["X-Message", "Message", "m"], "hello", "message", "hello"),
    ("title", ["X-Title", "Title", "ti", "t"], "Dogs", "title", "Dogs"),
    ("priority", ["X-Priority", "Priority", "prio", "p"], "high", "priority", 4),
    ("tags", ["X-Tags", "Tags", "Tag", "ta"], "warning, db1,,", "tags", ("warning", "db1")),
    ("click", ["X-Click", "Click"], "https://example.org/", "click", "https://example.org/"),
    ("attach", ["X-Attach", "Attach", "a"], "https://example.org/f.jpg", "attach",
     "https://example.org/f.jpg"),
    ("markdown", ["X-Markdown", "Markdown", "md"], "yes", "markdown", True),
    ("icon", ["X-Icon", "Icon"], "https://example.org/i.png", "icon",
     "https://example.org/i.png"),
    ("actions", ["X-Actions", "Actions", "Action"], "view, Open, https://example.org/",
     "actions", None),
]
ALIAS_CASES = [(field, name, value, attr, expected)
               for field, names, value, attr, expected in ALIASES for name in names]


@pytest.mark.parametrize(("field", "name", "value", "attr", "expected"), ALIAS_CASES)
def test_header_alias(field: str, name: str, value: str, attr: str, expected: object) -> None:
    for spelled in (name, name.lower(), name.upper()):
        pub = publish(headers={spelled: value})
        _check(pub, attr, expected)


@pytest.mark.parametrize(("field", "name", "value", "attr", "expected"), ALIAS_CASES)
def test_query_alias(field: str, name: str, value: str, attr: str, expected: object) -> None:
    for spelled in (name.lower(), name):
        pub = publish(query=[(spelled, value)])
        _check(pub, attr, expected)


def _check(pub: Publication, attr: str, expected: object) -> None:
    if attr == "actions":
        assert [(a.action, a.label, a.url) for a in pub.actions] == [
            ("view", "Open", "https://example.org/")]
    else:
        assert getattr(pub, attr) == expected


@pytest.mark.parametrize("name", ["X-Filename", "Filename", "file", "f"])
def test_filename_aliases_name_an_attached_url(name: str) -> None:
    pub = publish(headers={"Attach": "https://example.org/x", name: "report.pdf"})
    assert pub.filename == "report.pdf"
    pub = publish(query=[("attach", "https://example.org/x"), (name.lower(), "report.pdf")])
    assert pub.filename == "report.pdf"


def test_headers_win_over_the_query_and_aliases_keep_ntfys_order() -> None:
    pub = publish(headers={"t": "third", "Title": "second", "X-Title": "first"},
                  query=[("title", "query")])
    assert pub.title == "first"
    assert publish(headers={"Title": " "}, query=[("t", "query")]).title == "query"
    assert publish(query=[("t", ""), ("t", "later")]).title == "later"


def test_content_type_markdown() -> None:
    assert publish(content_type="text/markdown; charset=utf-8").markdown
    assert publish(query=[("content_type", "text/markdown")]).markdown
    assert not publish(headers={"Markdown": "no"}).markdown


@pytest.mark.parametrize(("given", "expected"), [
    ("1", 1), ("min", 1), ("2", 2), ("low", 2), ("3", 3), ("default", 3), ("4", 4),
    ("HIGH", 4), ("5", 5), ("max", 5), ("urgent", 5), (" Urgent ", 5)])
def test_priorities(given: str, expected: int) -> None:
    assert publish(headers={"Priority": given}).priority == expected


@pytest.mark.parametrize("given", ["0", "6", "-1", "3.0", "highest", "u=9; x"])
def test_other_priorities_are_400(given: str) -> None:
    refused(BadRequest, "invalid_priority", headers={"X-Priority": given})


def test_http_priority_header_from_proxies_is_ignored() -> None:
    # RFC 9218's Priority header, which Cloudflare adds; ntfy ignores it too
    assert publish(headers={"Priority": "u=3, i"}).priority is None
    assert publish(headers={"Priority": "u=1", "p": "5"}).priority == 5


def test_no_priority_is_none() -> None:
    assert publish().priority is None


# --- JSON at the root ----------------------------------------------------------------

def json_publish(data: object, **kwargs: Any) -> Publication:
    return publish("/", body=json.dumps(data).encode(), **kwargs)


def test_json_with_every_member() -> None:
    pub = json_publish({
        "topic": "mytopic", "message": "Disk space is low at 5.1 GB",
        "title": "Low disk space alert", "tags": ["warning", "cd"], "priority": 4,
        "attach": "https://filesrv.lan/space.jpg", "filename": "diskspace.jpg",
        "click": "https://homecamera.lan/xasds1h2xsSsa/", "markdown": True,
        "icon": "https://example.org/icon.png",
        "actions": [{"action": "view", "label": "Admin panel",
                     "url": "https://filesrv.lan/admin"}],
        "cache": "no", "firebase": "no", "future_member": {"x": 1},
    })
    assert (pub.topic, pub.message, pub.title, pub.tags, pub.priority) == (
        "mytopic", "Disk space is low at 5.1 GB", "Low disk space alert", ("warning", "cd"), 4)
    assert (pub.attach, pub.filename, pub.click, pub.markdown, pub.icon) == (
        "https://filesrv.lan/space.jpg", "diskspace.jpg",
        "https://homecamera.lan/xasds1h2xsSsa/", True, "https://example.org/icon.png")
    assert [(a.action, a.label, a.url) for a in pub.actions] == [
        ("view", "Admin panel", "https://filesrv.lan/admin")]


def test_json_minimal_and_put() -> None:
    assert json_publish({"topic": "t"}) == Publication(topic="t", message="triggered")
    assert json_publish({"topic": "t", "message": "hi"}, method="PUT").message == "hi"


def test_json_without_a_message_says_triggered_as_ntfy_does() -> None:
    pub = json_publish({"topic": "t", "attach": "https://example.org/a.png"},
                       headers={"Message": "not used"})
    assert pub.message == "triggered"


def test_json_fills_in_from_headers_and_query() -> None:
    pub = json_publish({"topic": "t", "title": "from json"},
                       headers={"Title": "from header", "Tags": "tada"},
                       query=[("priority", "5")])
    assert (pub.title, pub.tags, pub.priority) == ("from json", ("tada",), 5)


def test_json_priority_names_and_nulls() -> None:
    assert json_publish({"topic": "t", "priority": "urgent", "title": None}).priority == 5
    assert json_publish({"topic": "t", "priority": 0}).priority is None


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'"topic"', b"\xff",
                                  b'{"topic": "t"', b"[" * 100000])
def test_json_that_is_no_object_is_400(body: bytes) -> None:
    refused(BadRequest, "invalid_json", "/", body=body)


@pytest.mark.parametrize("data", [{}, {"topic": ""}, {"topic": 5}, {"topic": "a b"},
                                  {"topic": "x" * 65}, {"message": "no topic"}])
def test_json_needs_a_valid_topic(data: object) -> None:
    refused(BadRequest, "invalid_topic", "/", body=json.dumps(data).encode())


@pytest.mark.parametrize("topic", ["msg", "Healthz"])
def test_json_to_a_reserved_topic_is_400(topic: str) -> None:
    refused(BadRequest, "topic_reserved", "/", body=json.dumps({"topic": topic}).encode())


@pytest.mark.parametrize("member", [{"priority": 4.5}, {"priority": True}, {"tags": "a"},
                                    {"tags": [1]}, {"markdown": 1}, {"actions": {}},
                                    {"title": ["x"]}, {"message": 42}])
def test_json_members_of_the_wrong_type_are_400(member: dict[str, object]) -> None:
    if member == {"tags": "a"}:  # a string of tags is accepted, as a header would be
        assert json_publish({"topic": "t", **member}).tags == ("a",)
        return
    refused(BadRequest, "invalid_json", "/", body=json.dumps({"topic": "t", **member}).encode())


# --- refusals ------------------------------------------------------------------------

UNSUPPORTED = [
    ("delay", ["X-Delay", "Delay", "X-At", "At", "X-In", "In"], "30min"),
    ("email", ["X-Email", "X-E-Mail", "Email", "E-Mail", "Mail", "e"], "phil@example.com"),
    ("call", ["X-Call", "Call"], "+12223334444"),
    ("template", ["X-Template", "Template", "tpl"], "yes"),
]


@pytest.mark.parametrize(("field", "name", "value"), [
    (field, name, value) for field, names, value in UNSUPPORTED for name in names])
def test_unsupported_fields_are_refused(field: str, name: str, value: str) -> None:
    for kwargs in ({"headers": {name: value}}, {"query": [(name.lower(), value)]}):
        error = refused(BadRequest, "unsupported_field", **kwargs)
        assert repr(field) in error.message
        assert value not in error.message


@pytest.mark.parametrize("field", ["delay", "email", "call"])
def test_unsupported_json_members_are_refused(field: str) -> None:
    refused(BadRequest, "unsupported_field", "/",
            body=json.dumps({"topic": "t", field: "x"}).encode())


def test_template_off_and_cosmetic_fields_are_fine() -> None:
    pub = publish(headers={"Template": "no", "X-Cache": "no", "Firebase": "no", "up": "1",
                           "X-Poll-ID": "abc", "Icon": "https://example.org/i.png"},
                  body=b"hi")
    assert pub.message == "hi"


def test_a_filename_makes_the_body_a_file() -> None:
    pub = publish(headers={"Filename": "flower.jpg"}, body=b"\x89PNG")
    assert pub.file and pub.filename == "flower.jpg" and pub.content_type == "image/jpeg"
    assert pub.message == "You received a file: flower.jpg" and not pub.message_given
    assert not pub.text_to_send  # the file goes alone
    named = publish(headers={"X-Filename": "../b.log", "X-Message": "Backup done"},
                    content_type="text/plain", body=b"log")
    assert named.filename == "b.log" and named.content_type == "text/plain"
    assert named.message == "Backup done" and named.text_to_send
    assert publish(query=[("filename", "q.txt")], body=b"x").filename == "q.txt"
    error = refused(BadRequest, "attachment_not_supported", "/",
                    body=json.dumps({"topic": "t", "filename": "a.txt"}).encode())
    assert "PUT the file" in error.message


def test_binary_and_long_bodies_are_files() -> None:
    binary = publish(body=b"\x89PNG\r\n\x1a\n\xff")
    assert binary.file and binary.filename == "attachment.bin"
    assert binary.content_type == "application/octet-stream"
    long = publish(body=b"x" * 101, max_text=100, content_type="text/plain")
    assert long.file and long.filename == "attachment.txt"
    assert publish(body=None, max_text=100).file  # too large to keep in memory
    assert publish(body=b"x" * 100, max_text=100).message == "x" * 100
    latin = publish(body="café".encode("latin-1"),
                    content_type="text/plain; charset=latin-1")
    assert not latin.file and latin.message == "café"  # its charset says it is text


def test_with_an_attach_url_the_body_is_text() -> None:
    url = "https://example.org/a.png"
    assert publish(headers={"Attach": url}, body=b"look").message == "look"
    refused(BadRequest, "invalid_encoding", headers={"Attach": url}, body=b"\xff")
    refused(PayloadTooLarge, "message_too_long", headers={"Attach": url},
            body=b"x" * 101, max_text=100)


def test_long_messages_elsewhere_are_413() -> None:
    refused(PayloadTooLarge, "message_too_long", query=[("m", "é" * 51)], max_text=100)
    refused(PayloadTooLarge, "message_too_long", "/", max_text=100,
            body=json.dumps({"topic": "t", "message": "x" * 101}).encode())


def test_attachment_names() -> None:
    def name(url: str) -> str | None:
        return publish(headers={"Attach": url}).filename
    assert name("https://example.org/dir/flower%20pot.jpg?x=1") == "flower pot.jpg"
    assert name("https://example.org/") == "attachment"
    assert name("https://example.org") == "attachment"
    assert name("https://example.org/%00") == "attachment"
    assert publish(headers={"Attach": "https://example.org/a"}).message \
        == "You received a file: a"


@pytest.mark.parametrize(("headers", "code"), [
    ({"Attach": "ftp://example.org/x"}, "invalid_attach"),
    ({"Attach": "https://exa mple.org/"}, "invalid_attach"),
    ({"Attach": "/relative"}, "invalid_attach"),
    ({"Click": "https://example.org/a b"}, "invalid_click"),
    ({"Actions": "jump, Go, https://x"}, "invalid_actions"),
])
def test_invalid_urls_and_actions(headers: dict[str, str], code: str) -> None:
    refused(BadRequest, code, headers=headers)


def test_icon_is_cosmetic_never_refused() -> None:
    assert publish(headers={"Icon": "data:image/png;base64,AAAA"}).icon is None
    assert publish(headers={"Icon": "https://example.org/i.png"}).icon \
        == "https://example.org/i.png"


def test_click_may_be_any_uri_as_in_ntfy() -> None:
    assert publish(headers={"Click": "mailto:phil@example.com"}).click \
        == "mailto:phil@example.com"
