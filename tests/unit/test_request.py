"""Unit tests of request parsing (pure: no server involved)."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import examples
from xmpp_post.auth import Authenticator, Presented
from xmpp_post.auth.basic import BasicScheme
from xmpp_post.errors import ClientError
from xmpp_post.fronts import message_request as request
from xmpp_post.http.idempotency import validate_key
from xmpp_post.http.render import status_of
from xmpp_post.model import MESSAGE_TYPES, Rejected, Sender

DOMAINS = ("example.org", "example.net")
ALICE = Sender("alice@example.org", "pw")


def credentials(header: str | None, domains: tuple[str, ...] = DOMAINS) -> Sender:
    auth = Authenticator([BasicScheme(domains)])
    return auth.authenticate(Presented(authorization=(header,) if header is not None else ()))


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    return status_of(exc.value), exc.value.code


class TestCredentials:
    def test_full_and_short_user_names(self) -> None:
        creds = credentials(basic("Alice@Example.ORG:s3cr:et"), DOMAINS)
        assert (creds.jid, creds.password) == ("alice@example.org", "s3cr:et")
        assert credentials(basic("bob:pw"), DOMAINS).jid == "bob@example.org"
        assert credentials(basic("bob@example.net:pw"), DOMAINS).jid == \
            "bob@example.net"

    def test_password_is_not_in_repr(self) -> None:
        assert "s3cret" not in repr(credentials(basic("a:s3cret"), DOMAINS))

    @pytest.mark.parametrize("header", [
        None, "", "Bearer abc", "Basic !!!", basic("no-colon"), basic(":pw"),
        basic("alice@example.org:"), basic("a b@example.org:pw"),
        basic("alice@example.org/res:pw"), "Basic " + base64.b64encode(b"\xff:pw").decode(),
    ])
    def test_malformed_is_401(self, header: str | None) -> None:
        with pytest.raises(ClientError) as exc:
            credentials(header, DOMAINS)
        assert status_of(exc.value) == 401

    def test_other_domain_is_403(self) -> None:
        with pytest.raises(ClientError) as exc:
            credentials(basic("eve@evil.example:pw"), DOMAINS)
        assert code_of(exc) == (403, "domain_not_served")


class TestMessage:
    def test_text_plain_with_charset(self) -> None:
        msg = request.message("text/plain", "iso-8859-1", "Grüße".encode("latin-1"), "bob",
                              ALICE)
        assert (msg.to, msg.body, msg.type) == ("bob@example.org", "Grüße", "chat")

    def test_recipient_forms(self) -> None:
        def to(path: str) -> str:
            return request.message("text/plain", None, b"x", path, ALICE).to

        assert to("bob") == "bob@example.org"
        assert to("bob@other.example") == "bob@other.example"
        assert to("bob@other.example/phone") == "bob@other.example/phone"
        assert to("bob/phone") == "bob@example.org/phone"
        assert to("Bob@Other.Example") == "bob@other.example"

    def test_form_and_json(self) -> None:
        form = b"to=bob&type=headline&body=a%26b+c"
        msg = request.message("application/x-www-form-urlencoded", None, form, None, ALICE)
        assert (msg.to, msg.type, msg.body) == ("bob@example.org", "headline", "a&b c")
        doc = json.dumps({"to": "bob", "body": "hi", "type": None}).encode("utf-16")
        msg = request.message("application/json", None, doc, None, ALICE)
        assert (msg.to, msg.type, msg.body) == ("bob@example.org", "chat", "hi")

    def test_same_recipient_in_path_and_body_is_fine(self) -> None:
        doc = json.dumps({"to": "bob@example.org", "body": "hi"}).encode()
        assert request.message("application/json", None, doc, "bob", ALICE).to == \
            "bob@example.org"

    @pytest.mark.parametrize(("media", "body", "path", "expected"), [
        ("text/plain", b"hi", None, (422, "missing_recipient")),
        ("text/plain", b"", "bob", (422, "missing_body")),
        ("text/plain", b" \n\t", "bob", (422, "missing_body")),
        ("text/plain", b"\xff\xfe", "bob", (400, "invalid_encoding")),
        ("text/plain", b"a\x07", "bob", (400, "invalid_character")),
        ("text/plain", b"hi", "a@b@c", (400, "invalid_jid")),
        ("text/plain", b"hi", "@example.org", (400, "invalid_jid")),
        ("text/plain", b"hi", "bob\x00", (400, "invalid_character")),
        ("text/html", b"hi", "bob", (415, "unsupported_media_type")),
        ("", b"hi", "bob", (415, "unsupported_media_type")),
        ("application/json", b"[1]", "bob", (400, "invalid_json")),
        ("application/json", b"{", "bob", (400, "invalid_json")),
        ("application/json", b"[" * 100000, "bob", (400, "invalid_json")),
        ("application/json", b'{"body": 3}', "bob", (400, "invalid_field")),
        ("application/json", b'{"body": "a", "body": "b"}', "bob", (400, "duplicate_field")),
        ("application/json", b'{"body": "a", "from": "x@y"}', "bob", (400, "sender_field")),
        ("application/json", b'{"body": "a", "bdy": "b"}', "bob", (400, "unknown_field")),
        ("application/json", b'{"body": "a", "to": "carol"}', "bob",
         (400, "conflicting_recipient")),
        ("application/json", b'{"body": "a", "type": "error"}', "bob",
         (400, "invalid_type")),
        ("application/x-www-form-urlencoded", b"just text", "bob", (400, "invalid_form")),
        ("application/x-www-form-urlencoded", b"body=%ff", "bob", (400, "invalid_encoding")),
        ("application/x-www-form-urlencoded", b"body=a&body=b", "bob",
         (400, "duplicate_field")),
    ])
    def test_errors(self, media: str, body: bytes, path: str | None,
                    expected: tuple[int, str]) -> None:
        with pytest.raises(ClientError) as exc:
            request.message(media, None, body, path, ALICE)
        assert code_of(exc) == expected

    def test_unknown_charset_is_415(self) -> None:
        with pytest.raises(ClientError) as exc:
            request.message("text/plain", "x-klingon", b"hi", "bob", ALICE)
        assert code_of(exc) == (415, "unsupported_charset")


MEDIA = st.sampled_from(["text/plain", "application/json", "application/x-www-form-urlencoded",
                         "text/html", ""])


@settings(max_examples=examples(500), deadline=None)
@given(media=MEDIA, charset=st.one_of(st.none(), st.sampled_from(["utf-8", "latin-1", "nope"])),
       body=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                      st.dictionaries(st.sampled_from(["to", "type", "body", "from", "x"]),
                                      st.one_of(st.text(max_size=30), st.integers(),
                                                st.none()), max_size=4)
                      .map(lambda d: json.dumps(d).encode())),
       path=st.one_of(st.none(), st.text(max_size=40)))
def test_any_input_is_a_message_or_a_client_error(media: str, charset: str | None,
                                                  body: bytes, path: str | None) -> None:
    try:
        msg = request.message(media, charset, body, path, ALICE)
    except ClientError as exc:
        assert 400 <= status_of(exc) < 500 and exc.code and exc.message
    else:
        assert msg.body.strip() and "@" in msg.to and msg.type in MESSAGE_TYPES


@settings(max_examples=examples(300), deadline=None)
@given(header=st.one_of(st.none(), st.text(max_size=60),
                        st.binary(max_size=60).map(lambda b: "Basic " +
                                                   base64.b64encode(b).decode())))
def test_any_authorization_is_credentials_or_a_client_error(header: str | None) -> None:
    try:
        creds = credentials(header, DOMAINS)
    except ClientError as exc:
        assert status_of(exc) in (401, 403)
    else:
        assert creds.domain in DOMAINS and creds.password


class TestTextAndPaths:
    @pytest.mark.parametrize("charset", ["rot13", "base64", "hex", "zlib", "bz2", "uu",
                                         "quopri", "x-klingon"])
    def test_a_charset_that_is_not_a_text_encoding_is_415(self, charset: str) -> None:
        with pytest.raises(ClientError) as exc:
            request.message("text/plain", charset, b"aGk=", "bob", ALICE)
        assert code_of(exc) == (415, "unsupported_charset")

    def test_a_utf8_byte_order_mark_is_dropped(self) -> None:
        assert request.message("text/plain", None, b"\xef\xbb\xbfhi", "bob", ALICE).body == "hi"
        assert request.message("text/plain", "utf-8", b"\xef\xbb\xbf\xef\xbb\xbfhi", "bob",
                               ALICE).body == "\ufeffhi"  # only the mark, not the text
        form = b"\xef\xbb\xbfto=bob&body=hi"
        assert request.message("application/x-www-form-urlencoded", None, form, None,
                               ALICE).body == "hi"

    @pytest.mark.parametrize(("raw", "expected"), [
        ("/msg/bob", "bob"), ("/msg/", None), ("/msg/b%C3%BCb%2Fphone?x=1", "büb/phone"),
        ("/msg/a,b", "a,b"), ("/msg/a+b", "a+b"),
    ])
    def test_path_recipients(self, raw: str, expected: str | None) -> None:
        assert request.path_recipients(raw, "/msg") == expected

    @pytest.mark.parametrize("raw", ["/msg/j%FCrgen", "/msg/%C3", "/msg/\udcfc"])
    def test_a_path_that_is_not_utf8_is_400(self, raw: str) -> None:
        with pytest.raises(ClientError) as exc:
            request.path_recipients(raw, "/msg")
        assert code_of(exc) == (400, "invalid_encoding")


PATH_TEXT = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=30).map(lambda b: "".join(f"%{c:02X}" for c in b)),
    st.lists(st.sampled_from(["%", "%2", "%FC", "%C3%BC", "%2F", "%00", "%0A", ",", "/",
                              "@", "bob", "?", "#", "+", "\udcfc"]), max_size=8).map("".join))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # unicode_escape on "\~"
@settings(max_examples=examples(500), deadline=None)
@given(path=PATH_TEXT, body=st.binary(max_size=40),
       charset=st.one_of(st.none(), st.text(max_size=12),
                         st.sampled_from(["utf-8", "utf-16", "rot13", "base64", "idna",
                                          "unicode_escape", "punycode", "undefined"])))
def test_any_path_and_charset_is_a_message_or_a_client_error(
        path: str, body: bytes, charset: str | None) -> None:
    try:
        recipients = request.path_recipients("/msg/" + path, "/msg")
        msg = request.messages("text/plain", charset, body, recipients, ALICE)
    except ClientError as exc:
        assert 400 <= status_of(exc) < 500 and exc.code and exc.message
    else:
        for item in msg.items:
            assert isinstance(item, Rejected) or "@" in item.to


@settings(max_examples=examples(300), deadline=None)
@given(headers=st.lists(st.one_of(
    st.text(max_size=60), st.text(max_size=60).map(lambda t: "Basic " + t),
    st.binary(max_size=60).map(lambda b: "Basic " + base64.b64encode(b).decode())),
    max_size=3))
def test_any_authorization_headers_are_credentials_or_a_client_error(
        headers: list[str]) -> None:
    auth = Authenticator([BasicScheme(DOMAINS)])
    try:
        creds = auth.authenticate(Presented(authorization=tuple(headers)))
    except ClientError as exc:
        assert status_of(exc) in (400, 401, 403)
        assert len(headers) < 2 or exc.code == "duplicate_authorization"
    else:
        assert len(headers) == 1 and creds.domain in DOMAINS and creds.password


@settings(max_examples=examples(300), deadline=None)
@given(value=st.text(max_size=300))
def test_any_idempotency_key_is_valid_or_400(value: str) -> None:
    try:
        assert validate_key(value) == value
    except ClientError as exc:
        assert code_of_error(exc) == (400, "invalid_idempotency_key")
    else:
        assert value.isascii() and value.isprintable() and 1 <= len(value) <= 255


def code_of_error(error: ClientError) -> tuple[int, str]:
    return status_of(error), error.code
