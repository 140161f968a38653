"""What a publication becomes: the XMPP text, the reply object, the error body, actions."""

from __future__ import annotations

import re

import pytest

from xmpp_post.errors import (
    BadRequest,
    FileTooLarge,
    GatewayError,
    NotFound,
    Unauthorized,
    XmppUnavailable,
)
from xmpp_post.fronts.ntfy import (
    EMOJI,
    Action,
    MessageParts,
    Publication,
    compose,
    emoji_for,
    error_body,
    new_id,
    parse_actions,
    reply,
    to_styled_text,
)
from xmpp_post.http.render import status_of

# --- compose -------------------------------------------------------------------------


def test_plain_message() -> None:
    assert compose(Publication("t", "Backup done")) == MessageParts("Backup done")


def test_title_is_subject_and_bold_first_line() -> None:
    parts = compose(Publication("t", "Oh my ...", title="Dogs are better than cats"))
    assert parts == MessageParts("*Dogs are better than cats*\nOh my ...",
                                 subject="Dogs are better than cats")


def test_titles_that_cannot_be_bold() -> None:
    assert compose(Publication("t", "m", title="2*3 = 6")).body == "2*3 = 6\nm"
    assert compose(Publication("t", "m", title="two\nlines")).body == "*two lines*\nm"


def test_the_full_example() -> None:
    pub = Publication(
        "phil_alerts", "Remote access detected.", title="Unauthorized access",
        tags=("warning", "skull", "mailsrv13", "daily-backup"), priority=5,
        click="https://home.example.org/", attach="https://example.org/cam.jpg",
        filename="cam.jpg", actions=(
            Action("view", "Open portal", "https://home.example.org/"),
            Action("http", "Turn down", "https://api.example.org/", method="PUT"),
            Action("http", "Ping", "https://api.example.org/ping"),
            Action("broadcast", "Take picture", extras=(("cmd", "pic"),))))
    parts = compose(pub)
    assert parts.body == (
        "‼️ ⚠️ 💀 *Unauthorized access*\n"
        "Remote access detected.\n"
        "\n"
        "🔗 https://home.example.org/\n"
        "Open portal: https://home.example.org/\n"
        "Turn down: PUT https://api.example.org/\n"
        "Ping: POST https://api.example.org/ping\n"
        "Take picture: an Android broadcast, which only ntfy's app can send\n"
        "📎 cam.jpg: https://example.org/cam.jpg\n"
        "Tags: mailsrv13, daily-backup")
    assert parts.subject == "Unauthorized access"
    assert parts.oob_url == "https://example.org/cam.jpg"


@pytest.mark.parametrize(("priority", "lead"), [
    (5, "‼️ "), (4, "❗ "), (3, ""), (2, ""), (1, ""), (None, "")])
def test_priority_marker(priority: int | None, lead: str) -> None:
    assert compose(Publication("t", "disk full", priority=priority)).body == lead + "disk full"
    assert compose(Publication("t", "m", title="T", priority=priority)).body \
        == f"{lead}*T*\nm"


def test_emoji_without_title_start_the_text() -> None:
    assert compose(Publication("t", "Deployed", tags=("tada", "Rocket"))).body == "🎉 🚀 Deployed"


def test_a_leading_block_keeps_its_line() -> None:
    pub = Publication("t", "> quoted", tags=("warning",))
    assert compose(pub).body == "⚠️\n> quoted"


def test_markdown_message_is_styled() -> None:
    pub = Publication("t", "# Report\nAll **green**, see [CI](https://ci.example.org)",
                      markdown=True)
    assert compose(pub).body == "*Report*\nAll *green*, see CI (https://ci.example.org)"
    assert compose(Publication("t", "**raw**")).body == "**raw**"


# --- emoji ---------------------------------------------------------------------------

@pytest.mark.parametrize(("tag", "emoji"), [
    ("warning", "⚠️"), ("rotating_light", "🚨"), ("white_check_mark", "✅"), ("tada", "🎉"),
    ("skull", "💀"), ("+1", "👍"), ("-1", "👎"), ("partying_face", "🥳"),
    ("loudspeaker", "📢"), ("heavy_check_mark", "✔️"), ("x", "❌"), ("no_entry", "⛔"),
    ("triangular_flag_on_post", "🚩"), ("facepalm", "🤦"), ("cd", "💿"),
    ("computer", "💻"), ("no_entry_sign", "🚫"), ("WARNING", "⚠️"), (" tada ", "🎉"),
])
def test_emoji_table(tag: str, emoji: str) -> None:
    assert emoji_for(tag) == emoji


def test_emoji_table_is_large_enough_and_clean() -> None:
    assert len(EMOJI) >= 60
    assert all(code == code.lower() and " " not in code for code in EMOJI)
    assert emoji_for("mailsrv13") is None


# --- markdown ------------------------------------------------------------------------

@pytest.mark.parametrize(("markdown", "text"), [
    ("**bold** and __bold__", "*bold* and *bold*"),
    ("*it* and _it_", "_it_ and _it_"),
    ("***both***", "*_both_*"),
    ("~~gone~~", "~gone~"),
    ("**bold with _it_ inside**", "*bold with _it_ inside*"),
    ("# Title", "*Title*"),
    ("### Sub title ###", "*Sub title*"),
    ("## **Already bold**", "*Already bold*"),
    ("#hashtag", "#hashtag"),
    ("[ntfy](https://ntfy.sh)", "ntfy (https://ntfy.sh)"),
    ("[https://a.b](https://a.b)", "https://a.b"),
    ("![logo](https://a.b/l.png)", "logo (https://a.b/l.png)"),
    ("![](https://a.b/l.png)", "https://a.b/l.png"),
    ("<https://a.b/c>", "https://a.b/c"),
    ("`**not bold**` and ``a ` b``", "`**not bold**` and ``a ` b``"),
    (r"\*not it\*", "*not it*"),
    ("- one\n- **two**\n* three\n1. four", "- one\n- *two*\n* three\n1. four"),
    ("> quote *it*", "> quote _it_"),
    ("---", "---"),
    ("snake_case_name and 2 * 3 * 4", "snake_case_name and 2 * 3 * 4"),
    ("```\n**code**\n```\n**after**", "```\n**code**\n```\n*after*"),
    ("~~~sh\nrm *\n~~~", "```sh\nrm *\n```"),
    ("line one\r\nline two", "line one\nline two"),
])
def test_markdown_to_xep0393(markdown: str, text: str) -> None:
    assert to_styled_text(markdown) == text


def test_deep_nesting_does_not_recurse_forever() -> None:
    text = to_styled_text("**" * 2000 + "x" + "**" * 2000)
    assert "x" in text


# --- actions -------------------------------------------------------------------------

def test_short_format() -> None:
    actions = parse_actions(
        "view, Open portal, https://home.nest.com/, clear=true; "
        "http, Turn down, https://api.nest.com/, body='{\"temperature\": 65}', "
        "method=put, headers.Authorization=Bearer x; "
        "action=broadcast, label=\"Take, \\\"picture\\\"\", intent=io.x, extras.cmd=pic")
    assert actions == (
        Action("view", "Open portal", "https://home.nest.com/", clear=True),
        Action("http", "Turn down", "https://api.nest.com/", method="PUT",
               body='{"temperature": 65}', headers=(("Authorization", "Bearer x"),)),
        Action("broadcast", 'Take, "picture"', intent="io.x", extras=(("cmd", "pic"),)),
    )


def test_short_format_with_keys_in_any_order() -> None:
    assert parse_actions("action=view, url=https://x, label=Go;") == (
        Action("view", "Go", "https://x"),)


def test_json_actions() -> None:
    actions = parse_actions('[{"action": "VIEW", "label": "Open", "url": "https://x", '
                            '"clear": true, "id": "ignored"}, {"action": "http", '
                            '"label": "Do", "url": "https://y", "headers": {"A": "b"}}]')
    assert actions == (Action("view", "Open", "https://x", clear=True),
                       Action("http", "Do", "https://y", headers=(("A", "b"),)))


@pytest.mark.parametrize("text", [
    "view", "view, Open", "http, Do", "jump, Go, https://x", "view, , https://x",
    "view, Go, https://x, clear=maybe", "view, Go, https://x, colour=red",
    "view, Go, https://x, extra", "view, 'Go, https://x", "view, 'Go' x, https://x",
    "http, Get, https://x, method=GET, body=data",
    "view, A, https://a; view, B, https://b; view, C, https://c; view, D, https://d",
    "[", "[1]", '[{"action": "view", "label": 5}]', '[{"action": "view", "label": "a", '
    '"url": "https://x", "clear": "yes"}]', '[{"action": "http", "label": "a", '
    '"url": "https://x", "headers": {"a": 1}}]', '{"action": "view"}',
])
def test_invalid_actions(text: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_actions(text)
    assert info.value.code == "invalid_actions"


def test_no_actions() -> None:
    assert parse_actions("  ") == ()
    assert parse_actions("[]") == ()


# --- reply ---------------------------------------------------------------------------

def test_reply_minimal() -> None:
    assert reply(Publication("alerts", "triggered"), "hRBlpnbAn8Eh", 1700000000.9) == {
        "id": "hRBlpnbAn8Eh", "time": 1700000000, "event": "message", "topic": "alerts",
        "message": "triggered"}


def test_reply_full_shape_and_order() -> None:
    pub = Publication(
        "ops", "db1: /var at 91%", title="Disk full", tags=("warning", "db1"), priority=4,
        click="https://grafana.example.org/", attach="https://example.org/g.png",
        filename="graph.png", markdown=True, icon="https://example.org/i.png",
        actions=(Action("view", "Open", "https://example.org/"),
                 Action("http", "Ack", "https://example.org/ack", method="POST",
                        headers=(("X-A", "1"),), body="ok"),
                 Action("broadcast", "Pic", intent="io.x", extras=(("c", "p"),),
                        clear=True)))
    body = reply(pub, "abcdefABCDEF", 5)
    actions = body.pop("actions")
    assert list(body) == ["id", "time", "event", "topic", "title", "message", "priority",
                          "tags", "click", "icon", "attachment", "content_type"]
    assert body == {
        "id": "abcdefABCDEF", "time": 5, "event": "message", "topic": "ops",
        "title": "Disk full", "message": "db1: /var at 91%", "priority": 4,
        "tags": ["warning", "db1"], "click": "https://grafana.example.org/",
        "icon": "https://example.org/i.png",
        "attachment": {"name": "graph.png", "url": "https://example.org/g.png"},
        "content_type": "text/markdown"}
    assert isinstance(actions, list)
    ids = [action.pop("id") for action in actions]
    assert all(re.fullmatch(r"[A-Za-z0-9]{10}", action_id) for action_id in ids)
    assert actions == [
        {"action": "view", "label": "Open", "clear": False, "url": "https://example.org/"},
        {"action": "http", "label": "Ack", "clear": False, "url": "https://example.org/ack",
         "method": "POST", "headers": {"X-A": "1"}, "body": "ok"},
        {"action": "broadcast", "label": "Pic", "clear": True, "intent": "io.x",
         "extras": {"c": "p"}}]


def test_reply_keeps_an_explicit_default_priority() -> None:
    assert reply(Publication("t", "m", priority=3), "x", 0)["priority"] == 3


def test_message_ids_look_like_ntfys() -> None:
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9]{12}", message_id) for message_id in ids)


# --- errors --------------------------------------------------------------------------

@pytest.mark.parametrize(("error", "status", "code"), [
    (BadRequest("bad priority", code="invalid_priority"), 400, 40007),
    (BadRequest("bad topic", code="invalid_topic"), 400, 40009),
    (BadRequest("no delay", code="unsupported_field"), 400, 40050),
    (BadRequest("x"), 400, 40000),
    (Unauthorized("bad auth", code="invalid_auth_param"), 401, 40150),
    (NotFound("nothing here"), 404, 40401),
    (FileTooLarge("a file"), 413, 41301),
    (BadRequest("a JSON file", code="attachment_not_supported"), 400, 40053),
    (XmppUnavailable("down", code="xmpp_unreachable"), 503, 50300),
    (GatewayError("boom"), 500, 50000),
])
def test_error_body(error: GatewayError, status: int, code: int) -> None:
    assert error_body(error, status_of(error)) == {"error": error.code, "message": error.message,
                                 "http": status, "code": code}
