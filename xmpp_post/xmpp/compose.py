"""The ``<message/>`` stanza for an ``OutgoingMessage``, with its optional children.

* ``subject`` (left out of a group chat message unless ``subject_in_rooms``) and
  ``thread`` as the standard children; ``lang`` as ``xml:lang``;
* ``oob_url`` as XEP-0066 ``<x xmlns='jabber:x:oob'><url/></x>`` (the URL is also in the
  body, see ``fields.with_url``);
* ``receipt`` as a XEP-0184 ``<request xmlns='urn:xmpp:receipts'/>``.

Text goes through slixmpp's element API, so it is always escaped, never parsed as XML.

``wire_size`` is an upper bound of the stanza's size as the server reads it (UTF-8, every
text escaped), known before anything is sent: the relay refuses a message over the
server's stanza limit instead of letting the server end the stream for it.
"""

from __future__ import annotations

from typing import Any

from slixmpp.xmlstream import ET

from xmpp_post.model import OutgoingMessage

OOB_NS = "jabber:x:oob"
RECEIPTS_NS = "urn:xmpp:receipts"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MAX_ID = 64  # the longest stanza id: a client's (fields.stanza_id) or 16 hex digits
MAX_LANG = 35  # the longest xml:lang (fields.lang; else the stream's default, "en")
# Everything but the texts, with every optional part and the longest type, id and lang.
_FRAME = len(
    f'<message xmlns="jabber:client" to="" type="groupchat" id="{"i" * MAX_ID}" '
    f'xml:lang="{"l" * MAX_LANG}"><body></body><subject></subject><thread></thread>'
    f'<x xmlns="{OOB_NS}"><url></url></x><request xmlns="{RECEIPTS_NS}" /></message>')


def escaped_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 once XML-escaped as slixmpp does (& < > " ' as entities)."""
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    return (size + 4 * text.count("&") + 3 * (text.count("<") + text.count(">"))
            + 5 * (text.count('"') + text.count("'")))


def wire_size(message: OutgoingMessage) -> int:
    """An upper bound of the size in bytes of the largest stanza sending ``message``
    takes: its ``<message/>``, or the presence joining its room (``to``, the nick and
    ``room_password``: the frame covers the rest)."""
    texts = (message.to, message.body, message.subject, message.thread, message.oob_url,
             message.nick, message.room_password)
    return _FRAME + sum(escaped_size(text) for text in texts if text)


def message_stanza(client: Any, message: OutgoingMessage, kind: str, stanza_id: str) -> Any:
    """A ready-to-send slixmpp Message from the client's factory."""
    subject = message.subject if kind != "groupchat" or message.subject_in_rooms else None
    stanza = client.make_message(mto=message.to, mbody=message.body, mtype=kind,
                                 msubject=subject)
    stanza["id"] = stanza_id
    if message.lang:
        stanza.xml.set(XML_LANG, message.lang)
    if message.thread:
        stanza["thread"] = message.thread
    if message.oob_url:
        oob = ET.SubElement(stanza.xml, f"{{{OOB_NS}}}x")
        ET.SubElement(oob, f"{{{OOB_NS}}}url").text = message.oob_url
    if message.receipt:
        ET.SubElement(stanza.xml, f"{{{RECEIPTS_NS}}}request")
    return stanza
