"""Properties: whatever a client sends, the ntfy core answers with a GatewayError or
XML-safe text, never with another exception."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import examples
from xmpp_post.errors import BadRequest, GatewayError, Unauthorized
from xmpp_post.fronts.ntfy import (
    Publication,
    compose,
    decode_auth_param,
    parse_actions,
    parse_publish,
    reply,
    to_styled_text,
)
from xmpp_post.fronts.ntfy.params import PARAMS

NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
RESERVED = frozenset({"msg", "healthz"})
FAST = settings(max_examples=examples(300), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

NAMES = sorted({name for names in PARAMS.values() for name in names} | {"x-other", "e"})
# text as a header may carry it: anything, with undecodable bytes as lone surrogates
header_values = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="latin-1")),
    st.binary().map(lambda raw: raw.decode("utf-8", "surrogateescape")),
    st.sampled_from(["=?UTF-8?B?8J+HqfCfh6o=?=", "=?x?Q?=ZZ?=", "high", "yes", "1",
                     "view, a, https://x", "https://example.org/a.png", "u=1, i"]),
)
headers = st.dictionaries(st.sampled_from(NAMES), header_values, max_size=6)
query = st.lists(st.tuples(st.sampled_from([*NAMES, "auth"]), st.text()), max_size=6)
paths = st.one_of(st.sampled_from(["/", "/alerts", "/alerts/publish", "/msg", "/a/b/c"]),
                  st.text().map(lambda text: "/" + text))
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE"])
content_types = st.one_of(st.text(max_size=40), st.sampled_from(
    ["text/markdown", "text/plain; charset=latin-1", "text/plain; charset=nope"]))
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10)
json_bodies = st.fixed_dictionaries(
    {"topic": st.sampled_from(["alerts"] * 6 + ["msg", "", "a b"])},
    optional={name: json_values for name in
              ["message", "title", "tags", "priority", "click", "attach", "filename",
               "icon", "markdown", "actions", "delay", "cache"]},
).map(lambda data: json.dumps(data).encode())


def check_safe(pub: Publication) -> None:
    texts = [pub.topic, pub.message, pub.title or "", *pub.tags, pub.click or "",
             pub.attach or "", pub.filename or "", pub.icon or ""]
    for action in pub.actions:
        texts += [action.label, action.url, action.method, action.body, action.intent]
    parts = compose(pub)
    texts += [parts.body, parts.subject or "", parts.oob_url or ""]
    for text in texts:
        assert not NOT_XML.search(text), text
    assert parts.body.strip()
    json.dumps(reply(pub, "abcdefghijkl", 0)).encode("utf-8")


@FAST
@given(methods, paths, headers, query, st.binary(max_size=300), content_types)
def test_any_request_gives_a_publication_or_a_gateway_error(
        method: str, path: str, head: dict[str, str], pairs: list[tuple[str, str]],
        body: bytes, content_type: str) -> None:
    try:
        pub = parse_publish(method, path, head, pairs, body, content_type,
                            reserved=RESERVED, max_text=200)
    except GatewayError:
        return
    check_safe(pub)


@FAST
@given(st.sampled_from(["/alerts", "/alerts/publish", "/alerts/trigger"]), headers, query,
       st.binary(max_size=300), content_types)
def test_any_publish_to_a_topic_gives_a_publication_or_a_gateway_error(
        path: str, head: dict[str, str], pairs: list[tuple[str, str]], body: bytes,
        content_type: str) -> None:
    try:
        pub = parse_publish("POST", path, head, pairs, body, content_type,
                            reserved=RESERVED, max_text=200)
    except GatewayError:
        return
    check_safe(pub)


@FAST
@given(headers, query, st.one_of(json_bodies, st.binary(max_size=200)))
def test_any_json_publish_gives_a_publication_or_a_gateway_error(
        head: dict[str, str], pairs: list[tuple[str, str]], body: bytes) -> None:
    try:
        pub = parse_publish("POST", "/", head, pairs, body, "application/json",
                            reserved=RESERVED, max_text=200)
    except GatewayError:
        return
    check_safe(pub)


@FAST
@given(st.one_of(st.text(), st.text(alphabet=",;='\"\\ =abcview").map(str)))
def test_actions_parse_or_refuse(text: str) -> None:
    try:
        parse_actions(text)
    except BadRequest as error:
        assert error.code == "invalid_actions"


@FAST
@given(st.text(alphabet=st.sampled_from("*_~`#[]()!<>\\ \nab-:/.")) | st.text())
def test_markdown_conversion_never_fails(text: str) -> None:
    to_styled_text(text)


@FAST
@given(st.text())
def test_auth_param_decodes_or_is_unauthorized(value: str) -> None:
    try:
        header = decode_auth_param(value)
    except Unauthorized as error:
        assert error.code == "invalid_auth_param"
        return
    assert header.split(" ")[0].lower() in ("basic", "bearer")


@FAST
@given(st.sampled_from(["Basic", "Bearer"]),
       st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1),
       st.booleans(), st.booleans())
def test_auth_param_round_trip(scheme: str, token: str, urlsafe: bool, padded: bool) -> None:
    header = f"{scheme} {token}"
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    value = encode(header.encode()).decode()
    assert decode_auth_param(value if padded else value.rstrip("=")) == header
