"""An OMEMO client for the end-to-end tests, run as its own process (not the gateway's
code): slixmpp with the slixmpp-omemo plugin, its keys in a JSON file, printing one JSON
line per event on stdout.

    python -m tests.helpers.omemo_receiver JID PASSWORD PORT CA_FILE STORE_FILE [options]

* ``{"event": "ready", "device": N, "fingerprint": "…"}`` once its keys are published
  and it is online;
* ``{"event": "message", "from": …, "body": …, "namespace": …, "clear": …}`` for each
  message it receives: ``body`` decrypted (``namespace`` the OMEMO version), ``clear``
  the body outside the encryption;
* ``{"event": "error", "error": …}`` for a message it could not decrypt.

``--only oldmemo`` leaves it an empty ``urn:xmpp:omemo:2`` device list (a client that
speaks only OMEMO 0.3, like Conversations); ``--contacts-only`` makes its keys readable
only by its contacts (``pubsub#access_model`` ``presence``, Prosody's default);
``--phantom`` also lists a device that publishes no bundle. ``--join ROOM`` joins a
room (as its localpart) and decrypts its messages too.
``--subscribe JID`` asks for JID's presence; this client grants every such request
(``{"event": "granted", "to": …}``), which makes the asker its contact.

It also sends: each line on stdin ``{"send": JID, "body": …, "version": "2" | "0.3"}``
sends ``body`` OMEMO-encrypted (OMEMO 2 in a XEP-0420 envelope, or OMEMO 0.3) to JID's
devices (with ``"readers": [JID, …]``: to the room JID, encrypted for those members),
then says ``{"event": "sent", "id": …, "namespaces": […], "devices": N}``. It exits on
stdin's end.

slixmpp-omemo decrypts OMEMO 0.3 itself; for OMEMO 2 it stops before the XEP-0420
envelope, so this client reads the envelope's body itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import oldmemo
import oldmemo.etree
import twomemo
import twomemo.etree
from omemo.storage import Just, Maybe, Nothing, Storage
from omemo.types import DeviceInformation, JSONType
from slixmpp import JID, ClientXMPP
from slixmpp.plugins import register_plugin
from slixmpp_omemo import XEP_0384

TWOMEMO_NODES = ("urn:xmpp:omemo:2:devices", "urn:xmpp:omemo:2:bundles")
OLDMEMO_NODES = ("eu.siacs.conversations.axolotl.devicelist",)
SCE_NS = "urn:xmpp:sce:1"
PHANTOM = 424242  # a device id listed without a bundle (--phantom)


def say(**event: Any) -> None:
    print(json.dumps(event), flush=True)


class FileStorage(Storage):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._data: dict[str, JSONType] = (json.loads(path.read_text())
                                           if path.exists() else {})

    async def _load(self, key: str) -> Maybe[JSONType]:
        return Just(self._data[key]) if key in self._data else Nothing()

    async def _store(self, key: str, value: JSONType) -> None:
        self._data[key] = value
        self._path.write_text(json.dumps(self._data))

    async def _delete(self, key: str) -> None:
        self._data.pop(key, None)
        self._path.write_text(json.dumps(self._data))


STORE: list[Path] = []


class ReceiverOmemo(XEP_0384):  # type: ignore[misc]
    @property
    def storage(self) -> Storage:
        if not hasattr(self, "_file_storage"):
            self._file_storage = FileStorage(STORE[0])
        return self._file_storage

    @property
    def _btbv_enabled(self) -> bool:
        return True

    async def _devices_blindly_trusted(self, blindly_trusted: frozenset[DeviceInformation],
                                       identifier: str | None) -> None:
        return None

    async def _prompt_manual_trust(self, manually_trusted: frozenset[DeviceInformation],
                                   identifier: str | None) -> None:
        raise RuntimeError("no manual trust in tests")


register_plugin(ReceiverOmemo)


class OmemoReceiver(ClientXMPP):  # type: ignore[misc]
    def __init__(self, jid: str, password: str, options: argparse.Namespace) -> None:
        super().__init__(jid, password)
        self.options = options
        for plugin in ("xep_0030", "xep_0045", "xep_0060", "xep_0163", "xep_0199"):
            self.register_plugin(plugin)
        self.register_plugin("xep_0384", module=sys.modules[__name__])
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence_subscribe", self.on_subscribe)
        self.ready = asyncio.Event()

    async def on_start(self, _event: Any) -> None:
        omemo = self["xep_0384"]
        manager = await omemo.get_session_manager()
        if self.options.only == "oldmemo":
            await self._publish_empty_twomemo_list()
        if self.options.phantom:
            await self._list_a_phantom(manager)
        if self.options.contacts_only:
            await self._contacts_only(manager)
        self.send_presence()
        for room in self.options.join or []:
            await self["xep_0045"].join_muc_wait(JID(room), self.boundjid.user,
                                                 maxstanzas=0, timeout=20)
        for contact in self.options.subscribe or []:
            self.send_presence(pto=contact, ptype="subscribe")
        own, _others = await manager.get_own_device_information()
        say(event="ready", device=own.device_id,
            fingerprint=" ".join(manager.format_identity_key(own.identity_key)))

    async def _publish_empty_twomemo_list(self) -> None:
        # Stop the plugin from putting its device back when it sees the list change.
        self.del_event_handler("twomemo_device_list_publish",
                               self["xep_0384"]._on_device_list_update)
        devices = ET.Element("{urn:xmpp:omemo:2}devices")
        await self["xep_0060"].publish(self.boundjid.bare, TWOMEMO_NODES[0],
                                       id="current", payload=devices)

    async def _list_a_phantom(self, manager: Any) -> None:
        """List a device that publishes no bundle, beside this one, in both lists."""
        own, _others = await manager.get_own_device_information()
        listed = {own.device_id: None, PHANTOM: None}
        for node, module in ((TWOMEMO_NODES[0], twomemo), (OLDMEMO_NODES[0], oldmemo)):
            await self["xep_0060"].publish(self.boundjid.bare, node, id="current",
                                           payload=module.etree.serialize_device_list(listed))

    async def _contacts_only(self, manager: Any) -> None:
        own, _others = await manager.get_own_device_information()
        nodes = [*TWOMEMO_NODES, *OLDMEMO_NODES,
                 f"eu.siacs.conversations.axolotl.bundles:{own.device_id}"]
        for node in nodes:
            form = self["xep_0004"].make_form(ftype="submit")
            form.add_field(var="FORM_TYPE", ftype="hidden",
                           value="http://jabber.org/protocol/pubsub#node_config")
            form.add_field(var="pubsub#access_model", value="presence")
            await self["xep_0060"].set_node_config(JID(self.boundjid.bare), node, form)

    def on_subscribe(self, presence: Any) -> None:
        asker = presence["from"].bare
        self.send_presence(pto=asker, ptype="subscribed")
        say(event="granted", to=str(asker))

    async def on_message(self, stanza: Any) -> None:
        if stanza["type"] not in ("chat", "normal", "groupchat"):
            return
        sender = stanza["from"].bare
        if stanza["type"] == "groupchat":
            if stanza["from"].resource == self.boundjid.user:
                return  # our own message, reflected by the room
            real = self["xep_0045"].get_jid_property(stanza["from"].bare,
                                                     stanza["from"].resource, "jid")
            if real is None:
                return  # the room's own messages
            sender = JID(real).bare
        omemo = self["xep_0384"]
        clear = stanza["body"]
        namespaces = omemo.is_encrypted(stanza)
        try:
            if twomemo.twomemo.NAMESPACE in namespaces:
                body = await self._twomemo_body(stanza, sender)
                namespace = twomemo.twomemo.NAMESPACE
            elif namespaces:
                decrypted, _device = await omemo.decrypt_message(stanza)
                body, namespace = decrypted["body"], next(iter(namespaces))
            else:
                body, namespace = clear, None
        except Exception as exc:  # reported, for the test to see
            say(event="error", error=f"{type(exc).__name__}: {exc}")
            return
        await omemo.refresh_device_lists({JID(sender)}, force_download=True)
        manager = await omemo.get_session_manager()
        devices = [device for device in await manager.get_device_information(sender)
                   if any(active for _namespace, active in device.active)]
        say(event="message", sender=sender, body=body, namespace=namespace,
            clear=clear, id=stanza["id"], sender_devices=len(devices))

    async def send_encrypted(self, to: str, body: str, version: str,
                             readers: list[str] | None = None) -> None:
        """Encrypt ``body`` for ``to``'s devices with one OMEMO version and send it; to
        a room (``readers``: the members to encrypt for), as a group chat message."""
        omemo = self["xep_0384"]
        recipients = readers or [to]
        await omemo.refresh_device_lists({JID(jid) for jid in recipients},
                                         force_download=True)
        manager = await omemo.get_session_manager()
        namespace = twomemo.twomemo.NAMESPACE if version == "2" else oldmemo.oldmemo.NAMESPACE
        envelope = ET.Element(f"{{{SCE_NS}}}envelope")
        content = ET.SubElement(envelope, f"{{{SCE_NS}}}content")
        ET.SubElement(content, "{jabber:client}body").text = body
        ET.SubElement(envelope, f"{{{SCE_NS}}}from", {"jid": self.boundjid.bare})
        ET.SubElement(envelope, f"{{{SCE_NS}}}to", {"jid": to})
        plaintext = (ET.tostring(envelope) if version == "2" else body.encode("utf-8"))
        messages, _errors = await manager.encrypt(frozenset(recipients),
                                                  {namespace: plaintext},
                                                  backend_priority_order=[namespace])
        stanza = self.make_message(mto=JID(to), mtype="groupchat" if readers else "chat",
                                   mbody="[OMEMO encrypted]")
        module = twomemo if version == "2" else oldmemo
        for message in messages:
            stanza.xml.append(module.etree.serialize_message(message))
        stanza.enable("store")
        stanza.send()
        say(event="sent", id=stanza["id"], namespaces=[m.namespace for m in messages],
            devices=sum(len(m.keys) for m in messages))

    async def _twomemo_body(self, stanza: Any, sender: str) -> str | None:
        manager = await self["xep_0384"].get_session_manager()
        element = stanza.xml.find(f"{{{twomemo.twomemo.NAMESPACE}}}encrypted")
        message = twomemo.etree.parse_message(element, sender)
        plaintext, _device, _key = await manager.decrypt(message)
        if plaintext is None:
            return None
        envelope = ET.fromstring(plaintext.decode("utf-8"))
        if envelope.tag != f"{{{SCE_NS}}}envelope":
            raise ValueError("not a XEP-0420 envelope")
        to = envelope.find(f"{{{SCE_NS}}}to")
        if to is None or to.get("jid") not in (self.boundjid.bare, stanza["from"].bare):
            raise ValueError("the envelope is not addressed to us")
        body = envelope.find(f"{{{SCE_NS}}}content/{{jabber:client}}body")
        return body.text if body is not None else None


async def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("jid", "password", "port", "ca_file", "store"):
        parser.add_argument(name)
    parser.add_argument("--only", choices=("oldmemo",))
    parser.add_argument("--contacts-only", action="store_true")
    parser.add_argument("--subscribe", action="append")
    parser.add_argument("--join", action="append")
    parser.add_argument("--phantom", action="store_true")
    parser.add_argument("--resource", default="omemo")
    options = parser.parse_args()
    STORE.append(Path(options.store))
    client = OmemoReceiver(f"{options.jid}/{options.resource}", options.password, options)
    client.ssl_context = ssl.create_default_context(cafile=options.ca_file)
    client.connect("127.0.0.1", int(options.port))
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):  # until stdin ends
        command = json.loads(line)
        try:
            await client.send_encrypted(command["send"], command["body"],
                                        command.get("version", "2"), command.get("readers"))
        except Exception as exc:  # reported, for the test to see
            say(event="error", error=f"{type(exc).__name__}: {exc}")
    await asyncio.wait_for(client.disconnect(), 5)


if __name__ == "__main__":
    asyncio.run(main())
