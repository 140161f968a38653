"""Helpers shared by the fault and security tests: private servers, client addresses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from tests.helpers import PASSWORD, Account, Client, gateway_config
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.service import Gateway

ServerFactory = Callable[..., ProsodyServer]


def register(server: ProsodyServer, name: str, password: str = PASSWORD) -> Account:
    return Account(server.register(name, password), password)


@asynccontextmanager
async def gateway_for(server: ProsodyServer, **overrides: Any) -> AsyncIterator[Gateway]:
    gateway = Gateway(gateway_config(server, **overrides))
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@asynccontextmanager
async def client_from(address: str) -> AsyncIterator[Client]:
    """An HTTP client whose connections come from ``address`` (any 127.x.y.z works)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        yield Client(session)


async def nothing_else_arrived(http: Client, gateway: Gateway, sender: Account,
                               inbox: Receiver, to: str) -> None:
    """Prove that nothing more is on its way to ``inbox``, without sleeping: a barrier
    message sent now (by ``sender`` to ``to``, through the gateway) is the next to
    arrive. Whatever the server routed to ``inbox`` before would have arrived first."""
    reply = await http.post(gateway, f"/msg/{to}", "barrier", sender=sender)
    assert reply.status == 201, reply.text
    assert (await inbox.next()).body == "barrier"


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds (for state the code under test exposes no event for)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
