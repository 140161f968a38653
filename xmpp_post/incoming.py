"""A message that reached a bot's account, as both sides of a bot see it.

The XMPP side makes an ``Incoming`` from a stanza it received; the bot's core turns it
into the JSON its webhook is POSTed (``as_json``), or answers it itself (the alert
actions). Nothing here does I/O or knows an XMPP or HTTP library, so both sides may
import it, like ``model``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ReplyTo:
    """What an incoming message says it replies to (XEP-0461): the id of the message
    replied to and, where given, the JID of its author."""

    id: str
    to: str | None = None


@dataclass(frozen=True)
class Incoming:
    """One message received by a bot's account.

    ``id`` is the server's stanza-id (XEP-0359) where it gave one, else the message's
    own id. ``sender`` is the JID the stanza came from (in a room: the occupant's room
    JID); ``room`` and ``nick`` are set for room messages; ``real_jid`` is the bare JID
    behind a room occupant where the room reveals it (never sent to the webhook: it
    decides who may use the alert actions). ``time`` is the XEP-0203 delay's stamp, as
    sent, where present. ``encrypted``: it came OMEMO-encrypted and was decrypted (its
    reply is encrypted too, or not sent).
    """

    id: str
    type: str
    sender: str
    to: str
    body: str
    subject: str | None = None
    thread: str | None = None
    room: str | None = None
    nick: str | None = None
    real_jid: str | None = None
    reply_to: ReplyTo | None = None
    oob: tuple[str, ...] = field(default_factory=tuple)
    time: str | None = None
    encrypted: bool = False

    def as_json(self) -> dict[str, Any]:
        """The delivery's JSON object: every field of the webhook's contract, ``None``
        where a message has no such part."""
        return {
            "id": self.id, "type": self.type, "from": self.sender, "to": self.to,
            "body": self.body, "subject": self.subject, "thread": self.thread,
            "room": self.room, "nick": self.nick,
            "reply_to": (None if self.reply_to is None
                         else {"id": self.reply_to.id, "to": self.reply_to.to}),
            "oob": list(self.oob), "time": self.time, "encrypted": self.encrypted,
        }


@dataclass(frozen=True)
class ArchivePoint:
    """Where a bot reads its account's archive (XEP-0313) from: after the message of
    archive id ``after``, or, before any message was handled, from the time ``since``
    (ISO 8601, UTC)."""

    after: str | None = None
    since: str | None = None
