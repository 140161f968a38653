"""The OMEMO library's ``SessionManager`` for one sending account of this gateway.

python-omemo (the ``omemo`` package, with its ``twomemo`` backend and, with the extra
``oldmemo``, ``oldmemo``: ``omemo_backends`` says which are installed) does the
cryptography and keeps its data in an ``omemo_store.AccountStorage``; this class
answers what it asks of XMPP, through ``omemo_pep`` on the account's current stream
(``link``: the pool may replace the session of an account, never its device).

Trust is "blind trust before verification", as Conversations, Dino and Gajim do it: a
new device of an account none of whose devices was verified is trusted (``blind``);
once one device of that account is verified (``xmpp-post omemo trust``), a new device
is not (``unverified``) until it is verified too.

Only bots read encrypted messages (``bot_omemo``); what the library sends on its own
(``_send_message``: key exchange completions, heartbeats) goes out as a bare
``<message/>`` with the store hint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from omemo.bundle import Bundle
from omemo.message import Message
from omemo.session_manager import (
    BundleDeletionFailed,
    BundleDownloadFailed,
    BundleNotFound,
    BundleUploadFailed,
    DeviceListDownloadFailed,
    DeviceListUploadFailed,
    MessageSendingFailed,
    SessionManager,
    UnknownNamespace,
    UnknownTrustLevel,
)
from omemo.types import DeviceInformation, DeviceList, TrustLevel
from slixmpp.xmlstream import ET, tostring

from xmpp_post.xmpp import omemo_backends as installed
from xmpp_post.xmpp import omemo_pep as pep
from xmpp_post.xmpp.omemo_backends import OLDMEMO, TWOMEMO
from xmpp_post.xmpp.omemo_pep import NotFound, NotReadable, PepProblem

DEVICE_LIST_NODE = {TWOMEMO: "urn:xmpp:omemo:2:devices",
                    OLDMEMO: "eu.siacs.conversations.axolotl.devicelist"}
TWOMEMO_BUNDLES = "urn:xmpp:omemo:2:bundles"
HINTS_NS = "urn:xmpp:hints"

# The trust levels this gateway stores, and what each means to the library.
BLIND, VERIFIED, UNVERIFIED, DISTRUSTED, UNDECIDED = (
    "blind", "verified", "unverified", "distrusted", "undecided")
TRUST = {BLIND: TrustLevel.TRUSTED, VERIFIED: TrustLevel.TRUSTED,
         UNVERIFIED: TrustLevel.DISTRUSTED, DISTRUSTED: TrustLevel.DISTRUSTED,
         UNDECIDED: TrustLevel.UNDECIDED}

log = logging.getLogger(__name__)


def oldmemo_bundle_node(device_id: int) -> str:
    return f"eu.siacs.conversations.axolotl.bundles:{device_id}"


class ListNotReadable(DeviceListDownloadFailed):
    """A device list only the account's contacts may read."""


@dataclass
class Link:
    """The stream an account's device talks on now, and how long it waits for answers."""

    own_jid: str
    timeout: float
    client: Any = field(default=None, repr=False)

    def require(self) -> Any:
        if self.client is None:
            raise PepProblem("no XMPP session of the account is open")
        return self.client


class GatewaySessionManager(SessionManager):
    """One account's device; see the module docstring. Made by ``manager_class`` (the
    library builds it with ``cls()``, so the link is a class attribute)."""

    link: Link

    # publishing our own device -------------------------------------------------------

    async def _upload_bundle(self, bundle: Bundle) -> None:  # type: ignore[override]
        client = self.link.require()
        try:
            module = _module(bundle.namespace)
            if bundle.namespace == TWOMEMO:
                await pep.publish(client, TWOMEMO_BUNDLES, str(bundle.device_id),
                                  module.etree.serialize_bundle(bundle), self.link.timeout,
                                  {"pubsub#max_items": "max"})
            else:
                await pep.publish(client, oldmemo_bundle_node(bundle.device_id), "current",
                                  module.etree.serialize_bundle(bundle), self.link.timeout)
        except PepProblem as problem:
            raise BundleUploadFailed(str(problem)) from problem

    async def _delete_bundle(self, namespace: str, device_id: int) -> None:  # type: ignore[override]
        client = self.link.require()
        try:
            if namespace == TWOMEMO:
                await pep.retract(client, TWOMEMO_BUNDLES, str(device_id), self.link.timeout)
            elif namespace == OLDMEMO:
                await pep.delete_node(client, oldmemo_bundle_node(device_id), self.link.timeout)
            else:
                raise UnknownNamespace(f"unknown namespace {namespace}")
        except PepProblem as problem:
            raise BundleDeletionFailed(str(problem)) from problem

    async def _upload_device_list(  # type: ignore[override]
            self, namespace: str, device_list: DeviceList) -> None:
        payload = _device_list_xml(namespace, device_list)
        try:
            await pep.publish(self.link.require(), DEVICE_LIST_NODE[namespace], "current",
                              payload,
                              self.link.timeout, {"pubsub#max_items": "1"})
        except PepProblem as problem:
            raise DeviceListUploadFailed(str(problem)) from problem

    # reading others' -----------------------------------------------------------------

    async def _download_device_list(  # type: ignore[override]
            self, namespace: str, bare_jid: str) -> DeviceList:
        if namespace not in DEVICE_LIST_NODE:
            raise UnknownNamespace(f"unknown namespace {namespace}")
        try:
            payload = await pep.read_item(self.link.require(), bare_jid,
                                          DEVICE_LIST_NODE[namespace], None, self.link.timeout)
        except NotFound:
            return {}
        except NotReadable as problem:
            raise ListNotReadable(str(problem)) from problem
        except PepProblem as problem:
            raise DeviceListDownloadFailed(str(problem)) from problem
        if payload is None:
            return {}
        try:
            parsed = _parse_device_list(namespace, payload)
        except Exception:  # a malformed list is no list (as the clients treat it)
            log.warning("the %s device list of %s is malformed; ignored", namespace, bare_jid)
            return {}
        return parsed

    async def _download_bundle(  # type: ignore[override]
            self, namespace: str, bare_jid: str, device_id: int) -> Bundle:
        module = _module(namespace)
        if namespace == TWOMEMO:
            node, item = TWOMEMO_BUNDLES, str(device_id)
        else:
            node, item = oldmemo_bundle_node(device_id), None
        try:
            payload = await pep.read_item(self.link.require(), bare_jid, node, item,
                                          self.link.timeout)
        except NotFound as problem:
            raise BundleNotFound(str(problem)) from problem
        except PepProblem as problem:
            raise BundleDownloadFailed(str(problem)) from problem
        if payload is None:
            raise BundleNotFound(f"{bare_jid} publishes no bundle for device {device_id}")
        try:
            bundle: Bundle = module.etree.parse_bundle(payload, bare_jid, device_id)
        except Exception as exc:
            raise BundleDownloadFailed(f"the bundle of {bare_jid}'s device {device_id} "
                                       "is malformed") from exc
        return bundle

    # trust -----------------------------------------------------------------------------

    async def _evaluate_custom_trust_level(self, device: DeviceInformation) -> TrustLevel:
        level = TRUST.get(device.trust_level_name)
        if level is None:
            raise UnknownTrustLevel(f"unknown trust level {device.trust_level_name!r}")
        return level

    async def _make_trust_decision(self, undecided: frozenset[DeviceInformation],
                                   identifier: str | None) -> None:
        verified: dict[str, bool] = {}
        for device in undecided:
            if device.bare_jid not in verified:
                known = await self.get_device_information(device.bare_jid)
                verified[device.bare_jid] = any(other.trust_level_name == VERIFIED
                                                for other in known)
            level = UNVERIFIED if verified[device.bare_jid] else BLIND
            await self.set_trust(device.bare_jid, device.identity_key, level)

    # what the library sends on its own -------------------------------------------------

    async def _send_message(self, message: Message, bare_jid: str) -> None:  # type: ignore[override]
        module = _module(message.namespace)
        client = self.link.client
        if client is None:
            raise MessageSendingFailed("no XMPP session of the account is open")
        stanza = ET.Element("{jabber:client}message", {"to": bare_jid, "type": "chat"})
        stanza.append(module.etree.serialize_message(message))
        ET.SubElement(stanza, f"{{{HINTS_NS}}}store")
        client.send_raw(tostring(stanza, xmlns="jabber:client"))


def _module(namespace: str) -> Any:
    module = installed.module(namespace)
    if module is None:
        raise UnknownNamespace(f"unknown namespace {namespace}")
    return module


def _device_list_xml(namespace: str, device_list: DeviceList) -> ET.Element:
    module = installed.module(namespace)
    if module is not None:
        return module.etree.serialize_device_list(device_list)  # type: ignore[no-any-return]
    # Without the extra oldmemo, the library still withdraws this device from the 0.3
    # list it was published in before (a backend dropped since the last start): the list
    # is a few ids, written here.
    listed = ET.Element(f"{{{OLDMEMO}}}list")
    for device_id in device_list:
        ET.SubElement(listed, f"{{{OLDMEMO}}}device", {"id": str(device_id)})
    return listed


def _parse_device_list(namespace: str, payload: ET.Element) -> DeviceList:
    module = installed.module(namespace)
    if module is not None:
        return module.etree.parse_device_list(payload)  # type: ignore[no-any-return]
    return old_device_list(payload)


def old_device_list(payload: ET.Element) -> DeviceList:
    """An OMEMO 0.3 device list (``<list><device id=…/></list>``), read without its backend."""
    if payload.tag != f"{{{OLDMEMO}}}list":
        raise ValueError("not an OMEMO 0.3 device list")
    return {int(device.get("id", "")): None
            for device in payload.findall(f"{{{OLDMEMO}}}device")}


async def old_devices(link: Link, bare_jid: str) -> int:
    """How many devices ``bare_jid`` lists for OMEMO 0.3, read without its backend (an
    install without the extra ``oldmemo`` asks, to say why nothing could be sent);
    0 when the list cannot be read."""
    try:
        payload = await pep.read_item(link.require(), bare_jid, DEVICE_LIST_NODE[OLDMEMO],
                                      None, link.timeout)
    except PepProblem:
        return 0
    if payload is None:
        return 0
    try:
        return len(old_device_list(payload))
    except ValueError:  # malformed: no device
        return 0


def manager_class(link: Link) -> type[GatewaySessionManager]:
    """A ``GatewaySessionManager`` bound to ``link`` (its own class, for ``create``)."""
    return type("AccountSessionManager", (GatewaySessionManager,), {"link": link})


def serialize(message: Message) -> str:
    """An encrypted message's ``<encrypted/>`` element, as XML text."""
    return str(tostring(_module(message.namespace).etree.serialize_message(message),
                        xmlns="jabber:client"))
