"""A bot's OMEMO (``bot_session``'s ``Decryptor``): its device, decrypting what it
receives, encrypting its replies.

The bot's device is the one its account sends with from this instance
(``omemo_devices.OmemoDevices``: one device per account and instance, its keys sealed
in the state directory), made and published when the bot's stream comes online
(``ready``), and then talking on that stream whenever the bot uses it.

``decrypt`` reads a received ``<encrypted/>`` element, OMEMO 2 (``urn:xmpp:omemo:2``)
first, else OMEMO 0.3 (``eu.siacs.conversations.axolotl``, where its backend is
installed: ``omemo_backends``), and gives the body: OMEMO 2's XEP-0420 envelope must
name the sender and the bot (or the room) and hold a ``<body/>``; OMEMO 0.3 carries the
text alone. None: an empty OMEMO message (the library's key exchange completion or
heartbeat), nothing to deliver, or a message decrypted already (its ``stanza_id``: the
server's offline store and its archive may both hand it over, and its keys are used
once). ``Undecryptable`` says why a message cannot be read (not encrypted for this
device, malformed, from a device that is not trusted, a sender whose keys cannot be
read); it is never delivered.

Trust is issue 24's, blind trust before verification: before decrypting, a sending
device not yet decided on is decided on as when encrypting to it (trusted, unless
another device of its account was verified); a message from a device that is not
trusted is ``Undecryptable``.

``reply`` is a reply encrypted with the gateway's sending path
(``omemo_devices.encrypted_stanza``): to the sender, or in a room to its members where
the room qualifies (members-only and non-anonymous); otherwise ``OmemoUnavailable``
and nothing is sent.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

from omemo.session_manager import SessionManager

from xmpp_post import ids, jids
from xmpp_post.errors import OmemoUnavailable
from xmpp_post.incoming import Incoming
from xmpp_post.model import OutgoingMessage
from xmpp_post.xmpp import omemo_backends
from xmpp_post.xmpp.omemo_devices import OmemoDevices, StanzaLimits, encrypted_stanza
from xmpp_post.xmpp.omemo_manager import BLIND, UNDECIDED, UNVERIFIED, VERIFIED

log = logging.getLogger(__name__)

TWOMEMO_NS, OLDMEMO_NS = omemo_backends.TWOMEMO, omemo_backends.OLDMEMO
SCE_NS = "urn:xmpp:sce:1"
REPLY_NS = "urn:xmpp:reply:0"
MAX_PLAINTEXT = 256 * 1024  # bytes of a decrypted envelope read at most
REMEMBERED = 1000  # stanza-ids of messages decrypted, kept to skip their second copies


class Undecryptable(Exception):
    """A received OMEMO message this bot cannot read; the message says why."""


class BotOmemo:
    """One bot's OMEMO; see the module docstring."""

    def __init__(self, devices: OmemoDevices, account: str, limits: StanzaLimits) -> None:
        self._devices = devices
        self.account = account
        self._limits = limits
        self._decrypted: OrderedDict[str, None] = OrderedDict()

    async def ready(self, client: Any) -> None:
        """Make (or load) and publish the account's device, on ``client``'s stream."""
        await self._devices.device(self.account, client)

    async def decrypt(self, xml: Any, client: Any, sender: str, to: str,
                      stanza_id: str | None = None) -> str | None:
        """The body of the OMEMO message ``xml`` from the bare JID ``sender`` (in a room:
        the occupant's real JID) to ``to`` (the bot, or the room); see the module
        docstring."""
        if stanza_id is not None and stanza_id in self._decrypted:
            return None
        device = await self._devices.device(self.account, client)
        async with device.lock:
            try:
                namespace, plaintext = await self._decrypt(device.manager, xml, sender)
            except Undecryptable:
                raise
            except Exception as exc:  # the library's and the parsers' errors, all one here
                raise Undecryptable(f"{type(exc).__name__}: {exc}") from None
        if stanza_id is not None:
            self._decrypted[stanza_id] = None
            while len(self._decrypted) > REMEMBERED:
                self._decrypted.popitem(last=False)
        if plaintext is None:
            return None
        if namespace == OLDMEMO_NS:
            return plaintext.decode("utf-8", errors="replace")
        return envelope_body(plaintext, sender, to, self.account)

    async def _decrypt(self, manager: SessionManager, xml: Any,
                       sender: str) -> tuple[str, bytes | None]:
        found = [(namespace, element) for namespace in (TWOMEMO_NS, OLDMEMO_NS)
                 if (element := xml.find(f"{{{namespace}}}encrypted")) is not None]
        if not found:
            raise Undecryptable("no OMEMO element")
        own, _others = await manager.get_own_device_information()
        problems: list[str] = []
        for namespace, element in found:
            try:
                message = await self._parse(manager, namespace, element, sender)
            except Exception as exc:  # malformed: the other version may still do
                problems.append(f"{namespace}: {type(exc).__name__}: {exc}")
                continue
            if not any(key.bare_jid == self.account and key.device_id == own.device_id
                       for key, _exchange in message.keys):
                problems.append(f"{namespace}: not encrypted for this device")
                continue
            await self._decide_trust(manager, namespace, sender, message.device_id)
            plaintext, _device, _key = await manager.decrypt(message)
            return namespace, plaintext
        raise Undecryptable("; ".join(problems))

    async def _parse(self, manager: SessionManager, namespace: str, element: Any,
                     sender: str) -> Any:
        backend = omemo_backends.module(namespace)
        if backend is None:  # OMEMO 0.3 without the extra oldmemo
            raise Undecryptable(f"{omemo_backends.NAMES[namespace]} is not installed")
        if namespace == TWOMEMO_NS:
            return backend.etree.parse_message(element, sender)
        return await backend.etree.parse_message(element, sender, self.account, manager)

    async def _decide_trust(self, manager: SessionManager, namespace: str, sender: str,
                            device_id: int) -> None:
        """Blind trust before verification, for a sending device not decided on yet."""
        known = await manager.get_device_information(sender)
        device = next((d for d in known if d.device_id == device_id), None)
        if device is None:
            await manager.refresh_device_list(namespace, sender)
            known = await manager.get_device_information(sender)
            device = next((d for d in known if d.device_id == device_id), None)
        if device is None or device.trust_level_name != UNDECIDED:
            return  # unknown: the library says so; decided: it applies the decision
        verified = any(other.trust_level_name == VERIFIED for other in known)
        await manager.set_trust(sender, device.identity_key,
                                UNVERIFIED if verified else BLIND)

    async def reply(self, client: Any, message: Incoming, body: str, subject: str | None,
                    thread: str | None) -> bytes:
        """The ``<message/>`` replying to ``message`` (to its sender; in a room, to the
        room with the XEP-0461 reference in clear), encrypted; ``OmemoUnavailable`` when
        it cannot be."""
        in_room = message.type == "groupchat" and message.room is not None
        reply = OutgoingMessage(to=(message.room or "") if in_room else message.sender,
                                body=body, type=message.type, subject=subject,
                                thread=thread or message.thread, encrypt="omemo")
        try:
            data = await encrypted_stanza(self._devices, self._limits, self.account, client,
                                          reply, message.type, ids.stanza_id())
        except OmemoUnavailable:
            raise
        except Exception as exc:
            raise OmemoUnavailable(f"the reply could not be encrypted ({exc!r})") from None
        if in_room:
            closing = b"</message>"
            assert data.endswith(closing)
            reference = (f'<reply xmlns="{REPLY_NS}" to={quoteattr(message.sender)} '
                         f"id={quoteattr(message.id)}/>")
            data = data[:-len(closing)] + reference.encode() + closing
        return data


def envelope_body(plaintext: bytes, sender: str, to: str, own: str) -> str | None:
    """The body of a decrypted OMEMO 2 envelope (XEP-0420) from ``sender`` to ``to`` (or
    ``own``); ``Undecryptable`` if it is not one, or not between them."""
    if len(plaintext) > MAX_PLAINTEXT:
        raise Undecryptable("the envelope is too big")
    try:
        envelope = ElementTree.fromstring(plaintext.decode("utf-8"))
    except (ElementTree.ParseError, UnicodeDecodeError):
        raise Undecryptable("the envelope is not XML") from None
    if envelope.tag != f"{{{SCE_NS}}}envelope":
        raise Undecryptable("not a XEP-0420 envelope")
    said_from = envelope.find(f"{{{SCE_NS}}}from")
    said_to = envelope.find(f"{{{SCE_NS}}}to")
    if said_from is not None and jids.bare_of(said_from.get("jid") or "") != sender:
        raise Undecryptable("the envelope names another sender")
    if said_to is None or jids.bare_of(said_to.get("jid") or "") not in (to, own):
        raise Undecryptable("the envelope is not addressed to this bot")
    body = envelope.find(f"{{{SCE_NS}}}content/{{jabber:client}}body")
    return body.text if body is not None and body.text else None
