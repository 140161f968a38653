"""Unit tests of request parsing: the optional fields and several recipients (no I/O)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from xmpp_post import config
from xmpp_post.errors import BadRequest, ConfigError, GatewayError
from xmpp_post.fronts import fields
from xmpp_post.fronts.message_request import FORM, JSON, TEXT, message, messages
from xmpp_post.model import OutgoingMessage, Rejected, Sender

ALICE = Sender("alice@example.org", "secret")


def parse_json(doc: dict[str, object], path: str | None = None, query: str = "",
               **kwargs: object) -> list[OutgoingMessage | Rejected]:
    return list(messages(JSON, None, json.dumps(doc).encode(), path, ALICE, query=query,
                         **kwargs).items)  # type: ignore[arg-type]


def error_code(call: object) -> str:
    assert callable(call)
    with pytest.raises(GatewayError) as caught:
        call()
    return caught.value.code


def test_defaults_of_a_plain_message() -> None:
    got = message(TEXT, None, b"hi", "bob", ALICE)
    assert got == OutgoingMessage(to="bob@example.org", body="hi", type="chat",
                                  explicit_type=False, nick="alice")


def test_every_field_from_json() -> None:
    [got] = parse_json({"to": "bob", "type": "headline", "body": "b", "subject": "s",
                        "thread": "t-1", "id": "x.1", "lang": "de-CH",
                        "oob_url": "https://e.org/a", "receipt": True, "nick": "Bot"})
    assert isinstance(got, OutgoingMessage)
    assert (got.type, got.explicit_type, got.subject, got.thread, got.id, got.lang) == (
        "headline", True, "s", "t-1", "x.1", "de-CH")
    assert got.body == "b\nhttps://e.org/a" and got.oob_url == "https://e.org/a"
    assert got.receipt is True and got.nick == "Bot"


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("1", True), ("TRUE", True), ("false", False), ("0", False),
    (True, True), (False, False)])
def test_receipt_values(value: str | bool, expected: bool) -> None:
    [got] = parse_json({"to": "bob", "body": "b", "receipt": value})
    assert isinstance(got, OutgoingMessage) and got.receipt is expected


@pytest.mark.parametrize(("name", "value"), [
    ("id", "a b"), ("id", "x" * 65), ("id", "<x>"),
    ("thread", "a/b"), ("lang", "e"), ("lang", "en_GB"), ("lang", "en-"),
    ("oob_url", "/relative"), ("oob_url", "javascript:alert(1)"), ("oob_url", "http://"),
    ("oob_url", "https://e.org/a b"), ("oob_url", "https://e.org:99999/"),
    ("receipt", "yes please"), ("nick", " padded"), ("nick", "n" * 65),
])
def test_invalid_field_values(name: str, value: str) -> None:
    code = error_code(lambda: parse_json({"to": "bob", "body": "b", name: value}))
    assert code == f"invalid_{name}"


def test_an_empty_optional_field_counts_as_absent() -> None:
    [got] = parse_json({"to": "bob", "body": "b", "id": "", "subject": "", "lang": ""})
    assert isinstance(got, OutgoingMessage) and got.id is None and got.subject is None


def test_oob_url_alone_is_the_body_and_not_repeated() -> None:
    [alone] = parse_json({"to": "bob", "oob_url": "http://e.org/x"})
    [inside] = parse_json({"to": "bob", "body": "see http://e.org/x", "oob_url": "http://e.org/x"})
    assert isinstance(alone, OutgoingMessage) and isinstance(inside, OutgoingMessage)
    assert alone.body == "http://e.org/x" and inside.body == "see http://e.org/x"


def test_nick_default_from_setting_then_localpart() -> None:
    [from_setting] = parse_json({"to": "bob", "body": "b"}, default_nick="notifier")
    [asked] = parse_json({"to": "bob", "body": "b", "nick": "Ⅻ"}, default_nick="notifier")
    assert isinstance(from_setting, OutgoingMessage) and from_setting.nick == "notifier"
    assert isinstance(asked, OutgoingMessage) and asked.nick == "XII"  # resourceprep


def test_groupchat_rules() -> None:
    [room] = parse_json({"to": "r@conference.example.org", "type": "groupchat", "body": "b"})
    assert isinstance(room, OutgoingMessage) and room.type == "groupchat"
    assert error_code(lambda: parse_json({"to": "r@c.example.org/nick", "type": "groupchat",
                                          "body": "b"})) == "invalid_room"
    assert error_code(lambda: parse_json({"to": "r@c.example.org", "type": "groupchat",
                                          "body": "b", "receipt": "1"})) == "invalid_receipt"


def test_several_recipients_from_each_source() -> None:
    want = ["bob@example.org", "carol@example.org"]
    form = urlencode([("to", "bob"), ("to", "carol"), ("body", "b")]).encode()
    sources = [
        messages(JSON, None, b'{"to": ["bob", "carol"], "body": "b"}', None, ALICE),
        messages(FORM, None, form, None, ALICE),
        messages(TEXT, None, b"b", "bob,carol", ALICE),
        messages(TEXT, None, b"b", None, ALICE, query="to=bob&to=carol"),
    ]
    for parsed in sources:
        assert parsed.several
        assert [m.to for m in parsed.items] == want


def test_duplicates_are_sent_once_in_first_order() -> None:
    got = parse_json({"to": ["carol", "bob@example.org", "bob", "Carol@Example.org"],
                      "body": "b"})
    assert [m.to for m in got] == ["carol@example.org", "bob@example.org"]


def test_invalid_recipients_are_rejected_one_by_one_when_several() -> None:
    got = parse_json({"to": ["bob", "a@b@c", ""], "body": "b"})
    assert isinstance(got[0], OutgoingMessage)
    assert isinstance(got[1], Rejected) and got[1].error.code == "invalid_jid"
    assert isinstance(got[2], Rejected) and got[2].to == ""
    # With one recipient the request itself fails, as before.
    assert error_code(lambda: parse_json({"to": "a@b@c", "body": "b"})) == "invalid_jid"


def test_single_recipient_list_still_answers_per_recipient() -> None:
    parsed = messages(JSON, None, b'{"to": ["bob"], "body": "b"}', None, ALICE)
    assert parsed.several and len(parsed.items) == 1
    assert not messages(TEXT, None, b"b", "bob", ALICE).several


def test_recipient_limits_and_conflicts() -> None:
    assert error_code(lambda: parse_json({"to": ["a", "b", "c"], "body": "b"},
                                         max_recipients=2)) == "too_many_recipients"
    assert error_code(lambda: parse_json({"to": ["bob", "carol"], "body": "b"},
                                         path="bob")) == "conflicting_recipient"
    same = parse_json({"to": ["carol", "bob"], "body": "b"}, path="bob,carol")
    assert [m.to for m in same] == ["bob@example.org", "carol@example.org"]  # path order
    assert error_code(lambda: parse_json({"to": [1], "body": "b"})) == "invalid_field"
    assert error_code(lambda: parse_json({"to": "bob", "body": "b"},
                                         query="to=carol")) == "duplicate_field"


def test_query_string_fields() -> None:
    [got] = messages(TEXT, None, b"text", "bob", ALICE, query="subject=Hi%20there&lang=fr").items
    assert isinstance(got, OutgoingMessage) and (got.subject, got.lang) == ("Hi there", "fr")
    assert error_code(lambda: messages(TEXT, None, b"t", "bob", ALICE,
                                       query="colour=red")) == "unknown_field"
    assert error_code(lambda: messages(TEXT, None, b"t", "bob", ALICE,
                                       query="body=x")) == "duplicate_field"
    assert error_code(lambda: messages(FORM, None, b"to=bob&subject=a&subject=b", None,
                                       ALICE)) == "duplicate_field"


def test_with_url_helper() -> None:
    assert fields.with_url(None, "http://x.org") == "http://x.org"
    assert fields.with_url("  ", "http://x.org") == "http://x.org"
    assert fields.with_url("alert", "http://x.org") == "alert\nhttp://x.org"


def test_new_settings() -> None:
    cfg = config.load({"domain": ["example.org"]}, environ={})
    assert (cfg.receipt_timeout, cfg.muc_nick, cfg.max_recipients) == (10.0, "", 50)
    cfg = config.load({"domain": ["example.org"], "muc_nick": "Ⅻ"}, environ={})
    assert cfg.muc_nick == "XII"
    for name, value in (("muc_nick", " x"), ("receipt_timeout", "0"), ("max_recipients", "0")):
        with pytest.raises(ConfigError) as caught:
            config.load({"domain": ["example.org"], name: value}, environ={})
        assert caught.value.setting == name


def test_bad_request_is_the_error_class() -> None:
    with pytest.raises(BadRequest):
        parse_json({"to": "bob", "body": "b", "lang": "!"})
