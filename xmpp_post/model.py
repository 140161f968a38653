"""The types that cross the seam between the HTTP side and the XMPP side.

``Sender`` is who sends (an XMPP account and the password that proves it, how the
caller was authenticated, and the ``Scope`` a token or webhook limits it to);
``OutgoingMessage`` is one validated message to one recipient; ``Receipt`` is the one
result of a delivery; ``Rejected`` is a recipient of a request that was not sent to,
and why; ``SessionInfo`` is what may be shown of an open session (never its password).
Nothing here does I/O or knows HTTP or XMPP libraries.

``check_xml_text`` is the one rule for the text a stanza can carry (XML 1.0's
characters), on either side of the seam.

``type_for_target`` is the one rule for which message type goes to a recipient, once the
XMPP side knows whether that recipient is a room; the HTTP side applies the part of it
that needs no lookup (``check_room_rules``) before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from xmpp_post import jids, scan
from xmpp_post.errors import BadRequest, Forbidden, GatewayError, NotFound

MESSAGE_TYPES = ("chat", "normal", "headline", "groupchat")
ENCRYPTIONS = ("none", "omemo")  # what a message may ask for, weakest first
# Characters XML 1.0 cannot carry (outside its Char production), so no stanza can.
NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def check_xml_text(name: str, text: str) -> None:
    """BadRequest (400 ``invalid_character``) when ``text``, the ``name`` of a request,
    holds a character XML cannot carry; the message names the first one."""
    bad = scan.search(NOT_XML_CHAR, text, reach=1)
    if bad:
        raise BadRequest(f"the {name} contains the character U+{ord(bad.group()):04X}, "
                         "which XML cannot carry", code="invalid_character")


def xml_text(text: str) -> str:
    """``text`` without the characters XML cannot carry (control characters…), from
    calls into ``re`` that each read a bounded stretch (:mod:`xmpp_post.scan`)."""
    if len(text) <= scan.BLOCK:
        return NOT_XML_CHAR.sub("", text)
    return "".join(NOT_XML_CHAR.sub("", text[start:start + scan.BLOCK])
                   for start in range(0, len(text), scan.BLOCK))


@dataclass(frozen=True)
class Scope:
    """What a token or webhook limits its caller to: ``to`` only these bare JIDs (None:
    anyone), ``template`` always rendered by that template (None: as asked), and
    ``allowance``, which counts the messages about to be sent against a rate (raising
    the ``GatewayError`` that refuses them all; None: no rate)."""

    to: frozenset[str] | None = None
    template: str | None = None
    allowance: Callable[[int], None] | None = field(default=None, compare=False, repr=False)
    encrypt: str = "none"  # the least encryption its messages get (a request cannot lower it)

    def take(self, messages: int) -> None:
        """Count ``messages`` (one per recipient) before any is sent, or raise."""
        if self.allowance is not None and messages > 0:
            self.allowance(messages)

    def check_recipients(self, targets: list[str]) -> None:
        """Forbidden (403 ``recipient_not_allowed``) unless every target is allowed."""
        if self.to is None:
            return
        for target in targets:
            if target not in self.to:
                raise Forbidden(f"these credentials may not send to {target}",
                                code="recipient_not_allowed")

    def template_for(self, asked: str | None) -> str | None:
        """The template to render with: the forced one, or the one the request asked for."""
        if self.template is None or asked is None or asked == self.template:
            return self.template if self.template is not None else asked
        raise Forbidden(f"these credentials always render with the template "
                        f"{self.template!r}",
                        code="template_not_allowed")


    def encryption_for(self, asked: str | None, default: str) -> str:
        """The encryption of a message that asked for ``asked`` (None: ``default``);
        Forbidden (403 ``encryption_required``) when it asks for less than the scope's."""
        if asked is None:
            return strongest(default, self.encrypt)
        if ENCRYPTIONS.index(asked) < ENCRYPTIONS.index(self.encrypt):
            raise Forbidden(f"these credentials always send with encrypt={self.encrypt}",
                            code="encryption_required")
        return asked


def strongest(*modes: str) -> str:
    """The strongest of ``modes`` (``ENCRYPTIONS``, weakest first)."""
    return max(modes, key=ENCRYPTIONS.index)


UNSCOPED = Scope()


@dataclass(frozen=True)
class Sender:
    """Who is sending: a bare JID, the password that must prove it, how the caller was
    authenticated (``basic``, ``token:NAME`` or ``webhook:NAME``) and its scope.
    ``delivery``: for a signed webhook, the id its scheme gives this delivery (what
    deduplicates it, and nothing else does); None for none, and for other callers."""

    jid: str
    password: str = field(repr=False)
    via: str = "basic"
    scope: Scope = UNSCOPED
    delivery: str | None = None
    encrypt: str = "none"  # the default for its messages: --encrypt, its account's, ...

    @property
    def domain(self) -> str:
        return jids.domain_of(self.jid)

    @property
    def configured(self) -> bool:
        """True when the gateway holds this account's password (a token or webhook sends
        as one of ``[accounts]``), False when the caller presented it (HTTP Basic)."""
        return self.via != "basic"

    @property
    def webhook(self) -> bool:
        """True for a signed webhook's delivery (``POST /hooks/NAME``)."""
        return self.via.startswith("webhook:")


@dataclass(frozen=True)
class OutgoingMessage:
    """One ``<message/>`` to send, already validated.

    ``explicit_type`` is False when the request named no type: the relay then sends
    ``groupchat`` to a room and ``type`` (chat) to anyone else. ``nick`` and
    ``room_password`` only matter when the message goes to a room; so does
    ``subject_in_rooms``: False leaves the subject out there (some clients take any
    ``<subject/>`` in a room for a change of the room's topic).
    """

    to: str
    body: str
    type: str = "chat"
    explicit_type: bool = True
    subject: str | None = None
    thread: str | None = None
    id: str | None = None
    lang: str | None = None
    oob_url: str | None = None
    receipt: bool = False
    nick: str | None = None
    room_password: str | None = field(default=None, repr=False)
    subject_in_rooms: bool = True
    encrypt: str = "none"  # or "omemo": end-to-end encrypted, else not sent at all


@dataclass(frozen=True)
class Receipt:
    """Proof that the XMPP server acknowledged a message."""

    id: str
    sender: str
    to: str
    type: str
    nick: str | None = None  # the sender's nick in the room, for a group chat message
    receipt: str | None = None  # "received" or "timeout" when a receipt was requested

    def as_json(self) -> dict[str, str]:
        out = {"id": self.id, "from": self.sender, "to": self.to, "type": self.type}
        if self.nick is not None:
            out["nick"] = self.nick
        if self.receipt is not None:
            out["receipt"] = self.receipt
        return out


@dataclass(frozen=True)
class Rejected:
    """A recipient of a several-recipient request that was not sent to, and why."""

    to: str
    error: GatewayError


Outcome = Receipt | Rejected


@dataclass(frozen=True)
class SessionInfo:
    """One open XMPP session, as the status page shows it: whose it is, how many
    messages are in flight on it, and seconds since it opened and since its last use."""

    jid: str
    in_flight: int
    age: float
    idle: float

    def as_json(self) -> dict[str, object]:
        return {"jid": self.jid, "in_flight": self.in_flight, "age_seconds": round(self.age, 1),
                "idle_seconds": round(self.idle, 1)}


def check_room_rules(kind: str, receipt: bool) -> None:
    """The rules that need no lookup: no receipts for group chat messages."""
    if receipt and kind == "groupchat":
        raise BadRequest("delivery receipts cannot be requested for group chat messages",
                         code="invalid_receipt")


def type_for_target(message: OutgoingMessage, is_room: bool) -> str:
    """The type to send ``message`` with, once it is known whether its recipient is a room."""
    if message.type == "groupchat" and not is_room:
        raise NotFound(f"{message.to} is not a room: {jids.domain_of(message.to)} is not a "
                       "group chat service", code="room_not_found")
    if not is_room:
        return message.type
    if message.explicit_type and message.type != "groupchat":
        raise BadRequest(f"{message.to} is a room: send it type groupchat (or no type), "
                         f"not {message.type}", code="invalid_type")
    check_room_rules("groupchat", message.receipt)
    return "groupchat"
