"""The stanza's size is known before it is sent: ``wire_size`` bounds what slixmpp writes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from slixmpp import ClientXMPP
from slixmpp.xmlstream.tostring import tostring

from xmpp_post.model import OutgoingMessage
from xmpp_post.xmpp.compose import escaped_size, message_stanza, wire_size

CLIENT = ClientXMPP("alice@example.org/gw", "pw")
XML_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                   max_size=80).map(lambda t: "".join(c for c in t if c >= " " or c in "\t\n"))
SPECIAL = st.text(st.sampled_from("&<>\"'aé€😀\n"), max_size=40)
TEXT = st.one_of(XML_TEXT, SPECIAL)


def written(message: OutgoingMessage, kind: str, stanza_id: str) -> bytes:
    stanza = message_stanza(CLIENT, message, kind, stanza_id)
    text: str = tostring(stanza.xml, xmlns=CLIENT.default_ns, stream=CLIENT, top_level=True)
    return text.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(body=TEXT.filter(bool), subject=st.one_of(st.none(), TEXT.filter(bool)),
       thread=st.one_of(st.none(), st.just("t-1")), lang=st.sampled_from([None, "de-CH"]),
       url=st.one_of(st.none(), st.just("https://x.example/?a=1&b='2'")),
       receipt=st.booleans(), kind=st.sampled_from(["chat", "groupchat", "headline"]),
       stanza_id=st.sampled_from(["0123456789abcdef", "i" * 64]),
       resource=st.sampled_from(["", "/phone", "/ré&sumé"]))
def test_wire_size_bounds_the_stanza_slixmpp_writes(
        body: str, subject: str | None, thread: str | None, lang: str | None,
        url: str | None, receipt: bool, kind: str, stanza_id: str, resource: str) -> None:
    message = OutgoingMessage(to="bob@example.org" + resource, body=body, type=kind,
                              subject=subject, thread=thread, lang=lang, oob_url=url,
                              receipt=receipt, nick="alice")
    size = len(written(message, kind, stanza_id))
    bound = wire_size(message)
    assert size <= bound <= size + 400  # an upper bound, and a tight one


@given(text=TEXT)
def test_escaped_size_is_what_slixmpp_escapes_to(text: str) -> None:
    from slixmpp.xmlstream.tostring import escape

    assert escaped_size(text) == len(escape(text).encode("utf-8"))
