"""The ``<message/>`` stanza for an ``OutgoingMessage``, as the bytes that go on the wire.

* ``subject`` (left out of a group chat message unless ``subject_in_rooms``) and
  ``thread`` as the standard children; ``lang`` as ``xml:lang`` (else the stream's
  default language);
* ``oob_url`` as XEP-0066 ``<x xmlns='jabber:x:oob'><url/></x>`` (the URL is also in the
  body, see ``fields.with_url``);
* ``receipt`` as a XEP-0184 ``<request xmlns='urn:xmpp:receipts'/>``.

The bytes come from a fixed template, not from slixmpp's stanza objects (a few µs instead
of tens per message), and are exactly what slixmpp writes for the same message built
through its element API: the same attribute and child order, the same escaping of
``& < > " '`` in text and attribute values (``tests/unit/test_compose.py`` proves it with
generated messages). Every text is checked, never parsed as XML: a character XML cannot
carry is refused (``BadRequest`` ``invalid_character``) instead of being written, since
it would end the stream.

``wire_size`` is an upper bound of the stanza's size as the server reads it (UTF-8, every
text escaped), known before anything is sent: the relay refuses a message over the
server's stanza limit instead of letting the server end the stream for it.
"""

from __future__ import annotations

import re

from xmpp_post.model import OutgoingMessage, check_xml_text

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


_SPECIAL = re.compile("[&<>\"']")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}


def escape(text: str) -> str:
    """``text`` for XML character data or a double-quoted attribute value: the five
    special characters as entities (as slixmpp writes them); refuses what XML cannot
    carry."""
    check_xml_text("message", text)
    return entities(text)


def entities(text: str) -> str:
    """The five special characters of ``text`` as entities, nothing else checked."""
    if _SPECIAL.search(text) is None:
        return text
    return _SPECIAL.sub(_entity, text)


def _entity(found: re.Match[str]) -> str:
    return _ENTITIES[found.group()]


def message_bytes(message: OutgoingMessage, kind: str, stanza_id: str,
                  default_lang: str | None) -> bytes:
    """The serialised ``<message/>`` (UTF-8), ready to write on the stream."""
    lang = message.lang or default_lang
    subject = message.subject if kind != "groupchat" or message.subject_in_rooms else None
    parts = [f'<message type="{escape(kind)}" to="{escape(message.to)}" '
             f'id="{escape(stanza_id)}"']
    if lang:
        parts.append(f' xml:lang="{escape(lang)}"')
    parts.append(">")
    opened = len(parts)
    if message.body:
        parts.append(f"<body>{escape(message.body)}</body>")
    if subject:
        parts.append(f"<subject>{escape(subject)}</subject>")
    elif subject is not None:
        parts.append("<subject />")  # an empty subject (in a room: clears it)
    if message.thread:
        parts.append(f"<thread>{escape(message.thread)}</thread>")
    if message.oob_url:
        parts.append(f'<x xmlns="{OOB_NS}"><url>{escape(message.oob_url)}</url></x>')
    if message.receipt:
        parts.append(f'<request xmlns="{RECEIPTS_NS}" />')
    if len(parts) == opened:
        parts[-1] = " />"  # no children: an empty element, as slixmpp writes it
    else:
        parts.append("</message>")
    return "".join(parts).encode()


EME_NS = "urn:xmpp:eme:0"
HINTS_NS = "urn:xmpp:hints"
ENCRYPTED_HINT = ("This message is encrypted with OMEMO; your client cannot show it. "
                  "Use a client that supports OMEMO.")


def encrypted_text(message: OutgoingMessage) -> str:
    """The text an encrypted ``message`` carries: its subject (never sent in clear) as
    the first line, then its body."""
    if message.subject:
        return f"{message.subject}\n\n{message.body}" if message.body else message.subject
    return message.body


def encrypted_message_bytes(message: OutgoingMessage, kind: str, stanza_id: str,
                            default_lang: str | None, encrypted: str,
                            namespace: str) -> bytes:
    """The ``<message/>`` carrying ``encrypted`` (the ``<encrypted/>`` elements, XML
    text made by the OMEMO library) instead of the text: in clear only the XEP-0380 hint
    that it is encrypted (``namespace``, the first version used), a body saying so to
    clients without OMEMO, the store hint (so offline storage and archives keep it), the
    thread and the receipt request. No subject, no out-of-band URL: both are text."""
    lang = message.lang or default_lang
    parts = [f'<message type="{escape(kind)}" to="{escape(message.to)}" '
             f'id="{escape(stanza_id)}"']
    if lang:
        parts.append(f' xml:lang="{escape(lang)}"')
    parts.append(">")
    parts.append(encrypted)
    parts.append(f'<encryption xmlns="{EME_NS}" namespace="{escape(namespace)}" '
                 'name="OMEMO" />')
    parts.append(f"<body>{ENCRYPTED_HINT}</body>")
    if message.thread:
        parts.append(f"<thread>{escape(message.thread)}</thread>")
    if message.receipt:
        parts.append(f'<request xmlns="{RECEIPTS_NS}" />')
    parts.append(f'<store xmlns="{HINTS_NS}" /></message>')
    return "".join(parts).encode()


PREVIEW_ID = "(chosen when sent)"


def preview(message: OutgoingMessage) -> str:
    """The stanza ``message`` makes, with its type as given and its own id (else a
    placeholder: the session chooses one when it sends)."""
    return message_bytes(message, message.type, message.id or PREVIEW_ID, None).decode()
