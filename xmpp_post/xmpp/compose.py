"""The ``<message/>`` stanza for an ``OutgoingMessage``, with its optional children.

* ``subject`` (left out of a group chat message unless ``subject_in_rooms``) and
  ``thread`` as the standard children; ``lang`` as ``xml:lang``;
* ``oob_url`` as XEP-0066 ``<x xmlns='jabber:x:oob'><url/></x>`` (the URL is also in the
  body, see ``fields.with_url``);
* ``receipt`` as a XEP-0184 ``<request xmlns='urn:xmpp:receipts'/>``.

Text goes through slixmpp's element API, so it is always escaped, never parsed as XML.
"""

from __future__ import annotations

from typing import Any

from slixmpp.xmlstream import ET

from xmpp_post.model import OutgoingMessage

OOB_NS = "jabber:x:oob"
RECEIPTS_NS = "urn:xmpp:receipts"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


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
