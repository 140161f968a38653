"""A real XMPP client that logs in, comes online and collects the messages it receives.

With ``receipts=True`` it answers XEP-0184 receipt requests, as a chat client would. It
can also own and configure group chat rooms, join them, and set affiliations (bans,
membership), which the group chat tests need, and block senders (XEP-0191).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slixmpp import JID, ClientXMPP
from slixmpp.xmlstream import ET

from xmpp_post.xmpp.client import tls_context


@dataclass(frozen=True)
class Received:
    sender: str
    to: str
    type: str
    body: str
    id: str
    xml: str
    subject: str = ""
    thread: str = ""


class Receiver:
    """``async with Receiver(jid, password, port, ca_file) as r: await r.next()``."""

    def __init__(self, jid: str, password: str, port: int, ca_file: Path,
                 resource: str = "receiver", receipts: bool = False) -> None:
        self.jid = jid
        self._client = ClientXMPP(f"{jid}/{resource}", password,
                                  ssl_context=tls_context(ca_file, False))
        self._client.enable_direct_tls = False
        self._client.register_plugin("xep_0004")
        self._client.register_plugin("xep_0045")
        self._client.register_plugin("xep_0191")
        if receipts:
            self._client.register_plugin("xep_0184", {"auto_ack": True})
        self._port = port
        self.inbox: asyncio.Queue[Received] = asyncio.Queue()
        self.presences: list[tuple[str, str]] = []  # (from, type) of every presence seen
        self._client.add_event_handler("message", self._on_message)
        # slixmpp does not always raise "presence" for room occupants: count those apart.
        self._client.add_event_handler("presence", self._on_presence)
        self._client.add_event_handler("groupchat_presence", self._on_presence)

    def _on_presence(self, presence: Any) -> None:
        entry = (str(presence["from"]), str(presence["type"]))
        if self.presences and self.presences[-1] == entry:
            return  # the same stanza, seen as both events
        self.presences.append(entry)

    def _on_message(self, msg: Any) -> None:
        if not msg["body"]:
            return  # room subjects on joining, receipts, chat states
        self.inbox.put_nowait(Received(
            sender=str(msg["from"]), to=str(msg["to"]), type=str(msg["type"]),
            body=str(msg["body"]), id=str(msg["id"]), xml=str(msg),
            subject=str(msg["subject"]), thread=str(msg["thread"])))

    async def start(self, timeout: float = 10.0) -> None:
        started = asyncio.ensure_future(self._client.wait_until("session_start", timeout))
        self._client.connect("127.0.0.1", self._port)
        await started
        # Come online so the server routes messages to this resource, and wait for the
        # server to reflect our presence, which means it has processed it.
        available = asyncio.ensure_future(self._client.wait_until("presence_available", timeout))
        self._client.send_presence()
        await available

    async def subscribe_to(self, other: Receiver, timeout: float = 10.0) -> None:
        """Make ``self`` see ``other``'s presence (``other`` approves automatically)."""
        seen = asyncio.ensure_future(self._client.wait_until("presence_available", timeout))
        self._client.send_presence_subscription(pto=other.jid)
        await seen

    async def block(self, jid: str, timeout: float = 10.0) -> None:
        """Block ``jid`` (XEP-0191): the server refuses its messages to this account."""
        await self._client.plugin["xep_0191"].block([JID(jid)], timeout=timeout)

    # group chats ------------------------------------------------------------------------

    async def join_room(self, room: str, nick: str, password: str | None = None,
                        timeout: float = 10.0) -> set[str]:
        """Join ``room`` as ``nick`` (creating it if it does not exist yet), no history;
        return the status codes of the room's answer ("201": the join created it)."""
        result = await self._client.plugin["xep_0045"].join_muc_wait(
            JID(room), nick, password=password, maxstanzas=0, timeout=timeout)
        x = result[0].xml.find("{http://jabber.org/protocol/muc#user}x")
        if x is None:
            return set()
        return {status.get("code", "") for status in x}

    async def create_room(self, room: str, nick: str = "owner",
                          **options: str) -> None:
        """Create ``room``, stay in it as its owner, and submit its configuration.

        ``options`` are ``muc#roomconfig_*`` fields with the prefix left out, e.g.
        ``membersonly="1"``, ``roomsecret="s3cret"``; rooms are always persistent.
        """
        await self.join_room(room, nick)
        form = self._client.plugin["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden",
                       value="http://jabber.org/protocol/muc#roomconfig")
        options.setdefault("persistentroom", "1")
        for name, value in options.items():
            form.add_field(var=f"muc#roomconfig_{name}", value=value)
        await self._client.plugin["xep_0045"].set_room_config(JID(room), form)

    async def set_affiliation(self, room: str, jid: str, affiliation: str,
                              reason: str = "") -> None:
        """``outcast`` bans ``jid`` from the room, ``member`` makes it a member."""
        await self._client.plugin["xep_0045"].set_affiliation(
            JID(room), affiliation, jid=JID(jid), reason=reason)  # type: ignore[arg-type]

    def occupant_presences(self, room: str) -> list[tuple[str, str]]:
        """(nick, type) of every presence seen from occupants of ``room``, in order."""
        prefix = room + "/"
        return [(who[len(prefix):], kind) for who, kind in self.presences
                if who.startswith(prefix)]

    def send(self, to: str, body: str, kind: str = "chat", extra: Any = None) -> None:
        """Send a message of type ``kind`` (chat, normal, groupchat) to ``to``, with the
        element ``extra`` as a child, if given."""
        message = self._client.make_message(mto=JID(to), mbody=body, mtype=kind)
        if extra is not None:
            message.xml.append(extra)
        message.send()

    async def sync(self, timeout: float = 10.0) -> None:
        """Return once the server has handled everything sent before (a ping answered:
        it handles a stream's stanzas in order)."""
        iq = self._client.make_iq_get(ito=self.jid.partition("@")[2])
        iq.append(ET.Element("{urn:xmpp:ping}ping"))
        await iq.send(timeout=timeout)

    async def next(self, timeout: float = 10.0) -> Received:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def collect(self, count: int, timeout: float = 30.0) -> list[Received]:
        return [await self.next(timeout) for _ in range(count)]

    def pending(self) -> list[Received]:
        items = []
        while not self.inbox.empty():
            items.append(self.inbox.get_nowait())
        return items

    async def stop(self) -> None:
        if self._client.transport is not None:
            await asyncio.wait_for(self._client.disconnect(wait=1.0), 3.0)

    async def __aenter__(self) -> Receiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
