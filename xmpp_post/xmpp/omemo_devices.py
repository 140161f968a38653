"""The gateway's OMEMO devices, one per sending account, and encrypting a message with one.

``OmemoDevices`` is shared by every session (like ``upload.UploadServices``). An
account's device is made on its first encrypted message: loaded from the ``KeyStore``
if this instance made it before (the same device id and keys: restarts add no device
to the account's list), else created and published (bundles and device lists of each
OMEMO version installed: ``omemo_backends``). One device's work is serialised (its
ratchets are read, advanced and written back by each message).

``encrypt`` gives the ``<encrypted/>`` elements for one recipient's devices (and the
sender's other devices, so its own clients can read what was sent), each device with
the newest OMEMO version its device lists offer:

* ``urn:xmpp:omemo:2``: the text in a XEP-0420 envelope (``<body/>``, random padding,
  ``from`` and ``to``);
* ``eu.siacs.conversations.axolotl``: the text alone, as that version defines it (only
  with the extra ``oldmemo``; without it, a recipient whose devices speak only 0.3 is
  ``OmemoUnavailable`` saying so).

A recipient's device lists are read again once older than ``list_ttl`` seconds, and at
once when nothing could be encrypted with what was known (device lists change while the
gateway runs). Nothing encryptable is ``OmemoUnavailable`` with the reason: no device
in either list, lists or keys only the recipient's contacts may read, devices listed
without a bundle.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from omemo.session_manager import (
    DeviceListDownloadFailed,
    EncryptionError,
    NoEligibleDevices,
    SessionManager,
)

from xmpp_post.errors import OmemoUnavailable, PayloadTooLarge
from xmpp_post.locks import KeyedLocks
from xmpp_post.model import OutgoingMessage
from xmpp_post.xmpp import omemo_backends as installed
from xmpp_post.xmpp.omemo_backends import NAMES, OLDMEMO, TWOMEMO
from xmpp_post.xmpp.omemo_manager import (
    UNDECIDED,
    GatewaySessionManager,
    Link,
    ListNotReadable,
    manager_class,
    old_devices,
    serialize,
)
from xmpp_post.xmpp.omemo_rooms import room_members
from xmpp_post.xmpp.omemo_store import AccountStorage, KeyStore
from xmpp_post.xmpp.stanzas import encrypted_message_bytes, encrypted_text, entities

log = logging.getLogger(__name__)
# python-omemo logs the plaintext it encrypts at debug level: never let it through.
logging.getLogger("omemo").setLevel(logging.INFO)

SCE_NS = "urn:xmpp:sce:1"
MAX_PAD = 200


@dataclass
class AccountDevice:
    """One account's device: its session manager, the stream it talks on, its lock."""

    manager: SessionManager
    link: Link
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fetched: dict[str, float] = field(default_factory=dict)  # bare JID -> when its lists were read
    unreadable: dict[str, str] = field(default_factory=dict)  # bare JID -> why not


@dataclass(frozen=True)
class Encrypted:
    """A message's ``<encrypted/>`` elements (XML text) and the versions used."""

    xml: str
    namespaces: tuple[str, ...]


class OmemoDevices:
    """Every sending account's device; see the module docstring."""

    def __init__(self, store: KeyStore, *, timeout: float = 10.0, list_ttl: float = 60.0,
                 clock: Callable[[], float] = time.monotonic,
                 managers: Callable[[Link], type[GatewaySessionManager]] = manager_class,
                 ) -> None:
        self._store = store
        self._managers = managers  # the session manager class for a device's link
        self.timeout = timeout  # of each question to a server
        self._list_ttl = list_ttl
        self._clock = clock
        self._devices: dict[str, AccountDevice] = {}
        self._making = KeyedLocks()
        installed.log_available()

    async def device(self, account: str, client: Any) -> AccountDevice:
        """``account``'s device, talking on ``client`` (made and published if new)."""
        device = self._devices.get(account)
        if device is None:
            async with self._making.hold(account):
                device = self._devices.get(account)
                if device is None:
                    device = await self._make(account, client)
                    self._devices[account] = device
        device.link.client = client
        return device

    async def _make(self, account: str, client: Any) -> AccountDevice:
        link = Link(account, self.timeout, client)
        storage = AccountStorage(self._store, account)
        try:
            manager = await self._managers(link).create(
                installed.backends(storage), storage, account,
                initial_own_label=None, undecided_trust_level_name=UNDECIDED)
            await manager.after_history_sync()
        except Exception as exc:
            log.warning("the OMEMO device of %s could not be set up: %s", account, exc)
            raise OmemoUnavailable(f"the OMEMO device of {account} could not be set up "
                                   f"({exc})") from None
        own, _others = await manager.get_own_device_information()
        log.info("OMEMO device %d of %s ready (fingerprint %s)", own.device_id, account,
                 " ".join(manager.format_identity_key(own.identity_key)))
        return AccountDevice(manager, link)

    async def encrypt(self, account: str, client: Any, recipient: str, text: str) -> Encrypted:
        """The ``<encrypted/>`` elements carrying ``text`` from ``account`` to the bare
        JID ``recipient``; ``OmemoUnavailable`` when no device of theirs can have it."""
        device = await self.device(account, client)
        async with device.lock:
            await self._refresh(device, recipient, account)
            try:
                return await self._encrypt(device, account, {recipient}, recipient, text)
            except NoEligibleDevices:
                if not self._refresh_due(device, recipient, force=True):
                    raise await self._unavailable(device, recipient, ()) from None
            await self._refresh(device, recipient, account, force=True)
            try:
                return await self._encrypt(device, account, {recipient}, recipient, text)
            except NoEligibleDevices:
                raise await self._unavailable(device, recipient, ()) from None

    async def encrypt_room(self, account: str, client: Any, room: str,
                           members: list[str], text: str) -> Encrypted:
        """The ``<encrypted/>`` elements carrying ``text`` to the devices of the room's
        ``members`` (bare JIDs) that have one; a member without is skipped (it could not
        read the message anyway); ``OmemoUnavailable`` when none has."""
        device = await self.device(account, client)
        async with device.lock:
            readers: set[str] = set()
            for member in members:
                await self._refresh(device, member, account)
                known = await device.manager.get_device_information(member)
                if any(active for found in known for _namespace, active in found.active):
                    readers.add(member)
            if not readers:
                raise OmemoUnavailable(f"no member of {room} but the sender has an OMEMO "
                                       "device the gateway may encrypt for" + _no_0_3())
            try:
                return await self._encrypt(device, account, readers, room, text)
            except NoEligibleDevices as exc:
                raise OmemoUnavailable(
                    f"members of {room} without an OMEMO device the gateway may encrypt "
                    f"for: {', '.join(sorted(exc.bare_jids)[:5])}{_no_0_3()}") from None

    async def _encrypt(self, device: AccountDevice, account: str, recipients: set[str],
                       to: str, text: str) -> Encrypted:
        recipient = next(iter(recipients)) if len(recipients) == 1 else to
        priority = installed.namespaces()
        plaintexts = {TWOMEMO: envelope(text, account, to).encode("utf-8"),
                      OLDMEMO: text.encode("utf-8")}
        messages, errors = await device.manager.encrypt(
            frozenset(recipients), {namespace: plaintexts[namespace] for namespace in priority},
            backend_priority_order=priority)
        for error in errors:
            log.info("OMEMO: skipped device %d of %s (%s): %s", error.device_id,
                     error.bare_jid, error.namespace, error.exception)
        used = [message for message in messages
                if any(True for _key in message.keys)]
        if not used:
            raise await self._unavailable(device, recipient, errors)
        ordered = sorted(used, key=lambda message: priority.index(message.namespace))
        return Encrypted("".join(serialize(message) for message in ordered),
                         tuple(message.namespace for message in ordered))

    def _refresh_due(self, device: AccountDevice, jid: str, force: bool = False) -> bool:
        fetched = device.fetched.get(jid)
        if fetched is None:
            return True
        age = self._clock() - fetched
        return age > self._list_ttl or (force and age > 1.0)

    async def _refresh(self, device: AccountDevice, recipient: str, account: str,
                       force: bool = False) -> None:
        for jid in (recipient, account):
            if not self._refresh_due(device, jid, force and jid == recipient):
                continue
            why: list[str] = []
            for namespace in installed.namespaces():
                try:
                    await device.manager.refresh_device_list(namespace, jid)
                except ListNotReadable:
                    why.append(NAMES[namespace])
                except DeviceListDownloadFailed as exc:
                    log.info("OMEMO: the %s device list of %s could not be read: %s",
                             namespace, jid, exc)
            device.fetched[jid] = self._clock()
            if why:
                device.unreadable[jid] = " and ".join(why)
            else:
                device.unreadable.pop(jid, None)

    async def _unavailable(self, device: AccountDevice, recipient: str,
                           errors: frozenset[EncryptionError] | tuple[()]) -> OmemoUnavailable:
        if not installed.has_0_3() and await self._only_0_3(device, recipient):
            return OmemoUnavailable(installed.without_0_3(recipient))
        unreadable = device.unreadable.get(recipient)
        if unreadable:
            return OmemoUnavailable(
                f"{recipient} has no OMEMO device {device.link.own_jid} may see: its server "
                f"refused to show the {unreadable} device list (none published, or "
                f"readable only by its contacts: add {device.link.own_jid} to them, or have "
                "its client publish its keys open to anyone)")
        skipped = [error for error in errors if error.bare_jid == recipient]
        if skipped:
            return OmemoUnavailable(
                f"no OMEMO device of {recipient} could be used: "
                + "; ".join(f"device {error.device_id}: {error.exception}"
                            for error in skipped[:5]))
        return OmemoUnavailable(f"{recipient} has no OMEMO device the gateway may encrypt "
                                "for (none published, or none trusted)")

    @staticmethod
    async def _only_0_3(device: AccountDevice, recipient: str) -> bool:
        """Whether ``recipient`` lists OMEMO 0.3 devices and no OMEMO 2 one (asked only by
        an install without the extra, to say why nothing could be encrypted)."""
        known = await device.manager.get_device_information(recipient)
        if any(TWOMEMO in found.namespaces for found in known):
            return False
        return await old_devices(device.link, recipient) > 0

    async def fingerprint(self, account: str) -> str:
        """The fingerprint of ``account``'s device, if it has one (no stream needed)."""
        device = self._devices.get(account)
        if device is None:
            raise KeyError(account)
        own, _others = await device.manager.get_own_device_information()
        return " ".join(device.manager.format_identity_key(own.identity_key))

    async def stop(self) -> None:
        """Stop every device's background work (signed pre-key rotation)."""
        devices, self._devices = list(self._devices.values()), {}
        for device in devices:
            await device.manager.shutdown()


def _no_0_3() -> str:
    if installed.has_0_3():
        return ""
    return (f" (members whose devices speak only OMEMO 0.3 cannot be reached: this gateway "
            f"lacks OMEMO 0.3 support; pip install 'xmpp-post[{installed.EXTRA}]' adds it)")


def envelope(text: str, sender: str, recipient: str) -> str:
    """``text`` in a XEP-0420 envelope, as OMEMO 2 encrypts it: the body, random-length
    padding (so the length of the text shows less), the sender and the recipient."""
    pad = secrets.token_urlsafe(secrets.randbelow(MAX_PAD) + 1)[:MAX_PAD]
    return (f'<envelope xmlns="{SCE_NS}"><content><body xmlns="jabber:client">'
            f"{entities(text)}</body></content><rpad>{pad}</rpad>"
            f'<from jid="{entities(sender)}"/><to jid="{entities(recipient)}"/></envelope>')


class StanzaLimits(Protocol):
    @property
    def omemo_missing(self) -> str:
        """Why there are no devices, when there are none."""
        ...

    @property
    def max_stanza_size(self) -> int:
        """The server's limit: over it, the server ends the stream."""
        ...


async def encrypted_stanza(devices: OmemoDevices | None, limits: StanzaLimits, account: str,
                           client: Any, message: OutgoingMessage, kind: str,
                           stanza_id: str) -> bytes:
    """The ``<message/>`` of ``message`` encrypted with ``account``'s device (``limits``:
    the session's options); 413 ``stanza_too_large`` when it came out bigger than the
    server takes (the text grows by a third, and a key is added per device)."""
    if devices is None:
        raise OmemoUnavailable(limits.omemo_missing)
    bare = message.to.split("/", 1)[0]
    if kind == "groupchat":
        members = await room_members(client, bare, account, devices.timeout)
        encrypted = await devices.encrypt_room(account, client, bare, members,
                                               encrypted_text(message))
    else:
        encrypted = await devices.encrypt(account, client, bare, encrypted_text(message))
    data = encrypted_message_bytes(message, kind, stanza_id, client.default_lang,
                                   encrypted.xml, encrypted.namespaces[0])
    if len(data) > limits.max_stanza_size:
        raise PayloadTooLarge(f"the message, encrypted for every device, would be a stanza "
                              f"of {len(data)} bytes; the XMPP server takes at most "
                              f"{limits.max_stanza_size}", code="stanza_too_large")
    return data
