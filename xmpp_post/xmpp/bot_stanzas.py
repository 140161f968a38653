"""A bot's received ``<message/>`` read into an ``Incoming``, or the reason it is skipped.

Pure functions over ElementTree elements (no client, no I/O), so every rule is unit
tested: messages from the bot's own account or its own nick, errors, messages without a
body (receipts, chat states, room subjects), room history (anything with a delay the room
added, or before our join completed), rooms the bot is not in, and, with
``mentions_only``, room messages that do not name the nick are skipped; an OMEMO message
is skipped as ``encrypted`` unless its body was decrypted (``body``).

Read from a stanza: XEP-0359 stanza-id (the one ``by`` the account for direct messages,
``by`` the room for room messages), XEP-0461 reply, XEP-0066 out-of-band URLs, XEP-0203
delay, subject and thread. ``archive_result`` unwraps a XEP-0313 archive result,
``unwrap_carbon`` a XEP-0280 carbon copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xmpp_post import jids
from xmpp_post.incoming import Incoming, ReplyTo

CLIENT = "{jabber:client}"
SID_NS = "urn:xmpp:sid:0"
REPLY_NS = "urn:xmpp:reply:0"
OOB_NS = "jabber:x:oob"
DELAY_NS = "urn:xmpp:delay"
MAM_NS = "urn:xmpp:mam:2"
FORWARD_NS = "urn:xmpp:forward:0"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"
CARBONS_NS = "urn:xmpp:carbons:2"
ENCRYPTED = ("{eu.siacs.conversations.axolotl}encrypted", "{urn:xmpp:omemo:2}encrypted")
MAX_OOB = 10
MAX_STANZA_ID = 180  # characters; a longer stanza-id (or archive id) is not one we keep


@dataclass(frozen=True)
class Rooms:
    """What the session knows of its rooms: our nick in each room we asked to join,
    the rooms whose join completed (our own presence came back), and each room's
    occupants' real bare JIDs by nick, where the room reveals them."""

    nicks: Mapping[str, str]
    joined: frozenset[str]
    occupants: Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class Read:
    """The outcome of reading a message: ``incoming`` (with ``archive_id``, the
    account archive's stanza-id, and ``stanza_id``, the server's stanza-id its ``id``
    is: the account's, or the room's for a room message), or ``skipped`` saying why."""

    incoming: Incoming | None = None
    archive_id: str | None = None
    skipped: str = ""
    stanza_id: str | None = None


def _text(element: Any, tag: str) -> str | None:
    child = element.find(tag)
    return child.text if child is not None and child.text else None


def names_nick(body: str, nick: str) -> bool:
    """Whether ``body`` names ``nick`` as a word (case-insensitive): the characters
    around it are not letters or digits."""
    text, name = body.casefold(), nick.casefold()
    if not name:
        return False
    start = text.find(name)
    while start >= 0:
        end = start + len(name)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not before.isalnum() and not after.isalnum():
            return True
        start = text.find(name, start + 1)
    return False


def is_encrypted(xml: Any) -> bool:
    return any(xml.find(tag) is not None for tag in ENCRYPTED)


def stanza_id_by(xml: Any, by: str) -> str | None:
    for sid in xml.findall(f"{{{SID_NS}}}stanza-id"):
        value = sid.get("id")
        if jids.bare_of(sid.get("by", "")) == by and value:
            return str(value) if len(value) <= MAX_STANZA_ID else None
    return None


def read_message(xml: Any, own: str, rooms: Rooms, *, mentions_only: bool = True,
                 body: str | None = None, delay: str | None = None,
                 archived: bool = False) -> Read:
    """Read one received message for the bot of account ``own`` (bare JID). ``body``: a
    decrypted body replacing the stanza's; ``delay``: the archive's stamp;
    ``archived``: it comes from the account's archive (not live)."""
    kind = xml.get("type") or "normal"
    sender = xml.get("from") or ""
    origin = jids.bare_of(sender) if sender else own
    if kind == "error":
        return Read(skipped="error")
    if kind not in ("chat", "normal", "groupchat"):
        return Read(skipped="type")
    if origin == own:
        return Read(skipped="own")
    room = nick = real = None
    if kind == "groupchat" or origin in rooms.nicks:
        room, nick = origin, sender.partition("/")[2] or None
        if room not in rooms.nicks:
            return Read(skipped="unjoined")
        real = rooms.occupants.get(room, {}).get(nick or "")
        if kind == "groupchat":
            if archived:
                return Read(skipped="history")
            if nick is None or nick == rooms.nicks[room]:
                return Read(skipped="own")
            stamped = xml.find(f"{{{DELAY_NS}}}delay")
            if room not in rooms.joined or (stamped is not None and jids.bare_of(
                    stamped.get("from") or room) == room):
                return Read(skipped="history")
    text = body if body is not None else _text(xml, f"{CLIENT}body")
    if body is None and is_encrypted(xml):
        return Read(skipped="encrypted")
    if not text or not text.strip():
        return Read(skipped="no_body")
    if kind == "groupchat" and mentions_only and not names_nick(text, rooms.nicks[origin]):
        return Read(skipped="not_mentioned")
    archive_id = None if kind == "groupchat" else stanza_id_by(xml, own)
    room_id = stanza_id_by(xml, origin) if kind == "groupchat" else None
    reply = xml.find(f"{{{REPLY_NS}}}reply")
    stamp = xml.find(f"{{{DELAY_NS}}}delay")
    urls = [u.text.strip() for x in xml.findall(f"{{{OOB_NS}}}x")
            for u in x.findall(f"{{{OOB_NS}}}url") if u.text and u.text.strip()]
    return Read(Incoming(
        id=room_id or archive_id or xml.get("id") or "", type=kind, sender=sender or own,
        to=xml.get("to") or own, body=text, subject=_text(xml, f"{CLIENT}subject"),
        thread=_text(xml, f"{CLIENT}thread"), room=room, nick=nick, real_jid=real,
        reply_to=(ReplyTo(reply.get("id") or "", reply.get("to"))
                  if reply is not None and reply.get("id") else None),
        oob=tuple(urls[:MAX_OOB]),
        time=delay or (stamp.get("stamp") if stamp is not None else None)), archive_id,
        stanza_id=room_id or archive_id)


@dataclass(frozen=True)
class ArchiveResult:
    """One message of a XEP-0313 answer: its query, archive id, stamp and message."""

    queryid: str
    id: str
    stamp: str | None
    message: Any


def archive_result(xml: Any, own: str) -> ArchiveResult | None:
    """The archive result a ``<message/>`` carries, if it is one from our own account's
    archive (results from anyone else are forgeries, and None)."""
    result = xml.find(f"{{{MAM_NS}}}result")
    if result is None:
        return None
    sender = xml.get("from")
    forwarded = result.find(f"{{{FORWARD_NS}}}forwarded")
    if (sender and jids.bare_of(sender) != own) or forwarded is None:
        return None
    message = forwarded.find(f"{CLIENT}message")
    stamp = forwarded.find(f"{{{DELAY_NS}}}delay")
    if message is None or not result.get("id") or len(result.get("id")) > MAX_STANZA_ID:
        return None
    return ArchiveResult(result.get("queryid") or "", result.get("id"),
                         stamp.get("stamp") if stamp is not None else None, message)


def unwrap_carbon(xml: Any, own: str) -> tuple[bool, Any]:
    """(whether ``xml`` is a XEP-0280 carbon, the message it copies if it is one to
    hand on). A received carbon copies a message another resource of the account got
    (the gateway's sending sessions: a reply sent to their full JID); a sent carbon is
    the account's own message (None). A carbon from anyone but the account itself is a
    forgery (None)."""
    for kind in ("received", "sent"):
        wrapper = xml.find(f"{{{CARBONS_NS}}}{kind}")
        if wrapper is None:
            continue
        if (xml.get("from") or own) != own or kind == "sent":
            return True, None
        return True, wrapper.find(f"{{{FORWARD_NS}}}forwarded/{CLIENT}message")
    return False, None


@dataclass(frozen=True)
class Occupant:
    """A presence from a room: the room, the occupant's nick and real bare JID (if the
    room reveals it), whether it left, and whether it is our own (status 110)."""

    room: str
    nick: str
    real_jid: str | None
    gone: bool
    own: bool


def occupant(xml: Any) -> Occupant | None:
    """The room presence ``xml`` describes, or None when it is not one."""
    sender = xml.get("from") or ""
    x = xml.find(f"{{{MUC_USER_NS}}}x")
    if x is None or "/" not in sender:
        return None
    room, _, nick = sender.partition("/")
    item = x.find(f"{{{MUC_USER_NS}}}item")
    real = item.get("jid") if item is not None else None
    codes = {status.get("code") for status in x.findall(f"{{{MUC_USER_NS}}}status")}
    return Occupant(jids.bare_of(room), nick, jids.bare_of(real) if real else None,
                    xml.get("type") == "unavailable", "110" in codes)
