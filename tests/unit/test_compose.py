"""The stanza template (``xmpp.compose``) writes exactly what slixmpp would write, and
``wire_size`` bounds it.

The reference is slixmpp itself: a ``Message`` built through its element API on the
client every session uses (``xmpp.client.Client``, configured as ``xmpp.session`` does),
serialised the way its send loop does, with slixmpp's own escaping (``xmpp.compat``
replaces it process-wide by a faster one, proven the same here too). Hypothesis
generates the messages: any text XML can carry in the body and subject, ids, threads,
languages, URLs and recipients (full, bare, with resources that need escaping), every
type and every optional child.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.tostring import tostring

from tests.helpers import examples
from xmpp_post import jids
from xmpp_post.errors import BadRequest
from xmpp_post.model import MESSAGE_TYPES, NOT_XML_CHAR, OutgoingMessage, Sender
from xmpp_post.xmpp import compat
from xmpp_post.xmpp import stanzas as compose
from xmpp_post.xmpp.session import SessionOptions, XmppSession
from xmpp_post.xmpp.stanzas import escaped_size, wire_size


def reference_bytes(client: Any, message: OutgoingMessage, kind: str, stanza_id: str) -> bytes:
    """slixmpp's serialisation of the message: its element API, its ``tostring``."""
    subject = message.subject if kind != "groupchat" or message.subject_in_rooms else None
    stanza = client.make_message(mto=message.to, mbody=message.body, mtype=kind,
                                 msubject=subject)
    stanza["id"] = stanza_id
    if message.lang:
        stanza.xml.set(compose.XML_LANG, message.lang)
    if message.thread:
        stanza["thread"] = message.thread
    if message.oob_url:
        oob = ET.SubElement(stanza.xml, f"{{{compose.OOB_NS}}}x")
        ET.SubElement(oob, f"{{{compose.OOB_NS}}}url").text = message.oob_url
    if message.receipt:
        ET.SubElement(stanza.xml, f"{{{compose.RECEIPTS_NS}}}request")
    text: str = tostring(stanza.xml, xmlns=client.default_ns, stream=client, top_level=True)
    return text.encode()


@pytest.fixture(name="client", scope="module")
def client_fixture() -> Iterator[Any]:
    """The slixmpp client of a (never opened) gateway session, serialising with
    slixmpp's own escaping while the tests of this module run."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    session = XmppSession(Sender("alice@example.org", "pw"), SessionOptions())
    with compat.slixmpp_escaping():
        yield session._client
    asyncio.set_event_loop(None)
    loop.close()


XML_TEXT = st.text(st.characters(exclude_categories=["Cs"]).filter(
    lambda c: NOT_XML_CHAR.match(c) is None), max_size=40)
TOKEN = st.text(st.sampled_from("abcXYZ019._:-"), min_size=1, max_size=20)
LANG = st.sampled_from(["en", "de-CH", "zh-Hant-TW", "fr"])
URL = st.builds(lambda path, query: f"https://ci.example.org/{path}?{query}",
                st.text(st.sampled_from("abc/_-~%"), max_size=10),
                st.text(st.sampled_from("a=1&b=<2>'\"x"), max_size=12))


def _recipient(local: str, domain: str, resource: str | None) -> str:
    text = f"{local}@{domain}" + (f"/{resource}" if resource else "")
    try:
        return jids.recipient(text, "example.org")
    except jids.JidError:
        return f"{local}@{domain}"


RECIPIENT = st.builds(
    _recipient, st.sampled_from(["bob", "ops", "büro", "x.y"]),
    st.sampled_from(["example.org", "conference.example.net", "xn--bro-hoa.example"]),
    st.one_of(st.none(), st.text(st.characters(categories=["L", "N", "P", "S", "Zs"]),
                                 min_size=1, max_size=12)))

MESSAGES = st.builds(
    OutgoingMessage, to=RECIPIENT, body=XML_TEXT, type=st.sampled_from(MESSAGE_TYPES),
    subject=st.one_of(st.none(), XML_TEXT), thread=st.one_of(st.none(), TOKEN),
    id=st.one_of(st.none(), TOKEN), lang=st.one_of(st.none(), LANG),
    oob_url=st.one_of(st.none(), URL), receipt=st.booleans(),
    subject_in_rooms=st.booleans())


@settings(max_examples=examples(1000), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=MESSAGES, stanza_id=TOKEN)
@example(message=OutgoingMessage(to="bob@example.org", body="<&>\"'\r\n\t]]>"),
         stanza_id="a")
@example(message=OutgoingMessage(to="bob@example.org", body=""), stanza_id="a")
@example(message=OutgoingMessage(to="room@conference.example.org/O'Brien & <co>",
                                 body="x", subject="", receipt=True), stanza_id="a")
def test_the_template_writes_what_slixmpp_writes(client: Any, message: OutgoingMessage,
                                                 stanza_id: str) -> None:
    expected = reference_bytes(client, message, message.type, stanza_id)
    assert compose.message_bytes(message, message.type, stanza_id,
                                 client.default_lang) == expected


@settings(max_examples=examples(300), deadline=None)
@given(before=XML_TEXT, bad=st.sampled_from(["\x00", "\x08", "\x0b", "\x1f", "\ufffe",
                                             "\uffff", "\ud800"]),
       after=XML_TEXT, where=st.sampled_from(["body", "subject", "to"]))
def test_what_xml_cannot_carry_is_refused(before: str, bad: str, after: str,
                                          where: str) -> None:
    fields = {"to": "bob@example.org", "body": "text", where: before + bad + after}
    message = OutgoingMessage(to=fields["to"], body=fields["body"], subject=fields.get("subject"))
    with pytest.raises(BadRequest) as refused:
        compose.message_bytes(message, "chat", "id1", "en")
    assert refused.value.code == "invalid_character"


SPECIAL = st.text(st.sampled_from("&<>\"'aé€😀\n"), max_size=40)
TEXT = st.one_of(XML_TEXT, SPECIAL)


@settings(max_examples=examples(300), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=TEXT.filter(bool), subject=st.one_of(st.none(), TEXT.filter(bool)),
       thread=st.one_of(st.none(), st.just("t-1")), lang=st.sampled_from([None, "de-CH"]),
       url=st.one_of(st.none(), st.just("https://x.example/?a=1&b='2'")),
       receipt=st.booleans(), kind=st.sampled_from(["chat", "groupchat", "headline"]),
       stanza_id=st.sampled_from(["0123456789abcdef", "i" * 64]),
       resource=st.sampled_from(["", "/phone", "/ré&sumé"]))
def test_wire_size_bounds_the_stanza_slixmpp_writes(
        client: Any, body: str, subject: str | None, thread: str | None, lang: str | None,
        url: str | None, receipt: bool, kind: str, stanza_id: str, resource: str) -> None:
    message = OutgoingMessage(to="bob@example.org" + resource, body=body, type=kind,
                              subject=subject, thread=thread, lang=lang, oob_url=url,
                              receipt=receipt, nick="alice")
    size = len(reference_bytes(client, message, kind, stanza_id))
    bound = wire_size(message)
    assert size <= bound <= size + 400  # an upper bound, and a tight one


@given(text=TEXT)
def test_escaped_size_is_what_slixmpp_escapes_to(text: str) -> None:
    assert compat.SLIXMPP_ESCAPE is not None
    assert escaped_size(text) == len(compat.SLIXMPP_ESCAPE(text, False).encode("utf-8"))


@settings(max_examples=examples(1000), deadline=None)
@given(text=st.text())
@example(text="<&>\"'\r\n\x00]]>")
def test_the_faster_escaping_is_slixmpps(text: str) -> None:
    assert compat.SLIXMPP_ESCAPE is not None
    assert compat.escape(text) == compat.SLIXMPP_ESCAPE(text, False)
    assert compat.escape(text, True) == compat.SLIXMPP_ESCAPE(text, True)
