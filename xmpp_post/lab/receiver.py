"""A real XMPP client that logs in, comes online and collects the messages it receives."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slixmpp import ClientXMPP

from xmpp_post.session import tls_context


@dataclass(frozen=True)
class Received:
    sender: str
    to: str
    type: str
    body: str
    id: str
    xml: str


class Receiver:
    """``async with Receiver(jid, password, port, ca_file) as r: await r.next()``."""

    def __init__(self, jid: str, password: str, port: int, ca_file: Path,
                 resource: str = "receiver") -> None:
        self.jid = jid
        self._client = ClientXMPP(f"{jid}/{resource}", password,
                                  ssl_context=tls_context(ca_file, False))
        self._client.enable_direct_tls = False
        self._port = port
        self.inbox: asyncio.Queue[Received] = asyncio.Queue()
        self.presences: list[tuple[str, str]] = []  # (from, type) of every presence seen
        self._client.add_event_handler("message", self._on_message)
        self._client.add_event_handler(
            "presence", lambda p: self.presences.append((str(p["from"]), str(p["type"]))))

    def _on_message(self, msg: Any) -> None:
        self.inbox.put_nowait(Received(
            sender=str(msg["from"]), to=str(msg["to"]), type=str(msg["type"]),
            body=str(msg["body"]), id=str(msg["id"]), xml=str(msg)))

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
