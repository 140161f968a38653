"""Fixtures: one real Prosody for the session, gateways and receiving clients per test."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from xmpp_post import config
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.lab.redis_server import RedisServer
from xmpp_post.service import Gateway, web_app
from xmpp_post.testing import FakeRelay, Handler

PASSWORD = "correct horse battery staple"
_serial = itertools.count()


E2E_NAMES = ("ProsodyServer", "Gateway", "subprocess", "RedisServer")  # starts real things


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the real Prosody are end-to-end (``-m e2e``); the rest are unit
    tests (``-m unit``, a few seconds, nothing started)."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        module = getattr(item, "module", None)
        real = "prosody" in fixtures or any(hasattr(module, name) for name in E2E_NAMES)
        item.add_marker(pytest.mark.e2e if real else pytest.mark.unit)


@pytest.fixture(scope="session")
def prosody() -> Iterator[ProsodyServer]:
    if shutil.which("prosody") is None:
        pytest.fail("Prosody is not installed: run the README's test command (scripts/test)")
    server = ProsodyServer()
    server.start()
    # "bob" exists, for tests that care only about the sender (a message to an account
    # that does not exist is refused: 404).
    server.register("bob", PASSWORD)
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private Redis for the session (tests that stop it start it again)."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run the README's test command (scripts/test)")
    server = RedisServer()
    server.start()
    yield server
    server.close()


@dataclass(frozen=True)
class Account:
    jid: str
    password: str

    @property
    def local(self) -> str:
        return self.jid.partition("@")[0]


AccountFactory = Callable[..., Account]


@pytest.fixture
def account(prosody: ProsodyServer) -> AccountFactory:
    """Make a fresh account on the test server: ``account()`` or ``account("name")``."""

    def make(prefix: str = "user", password: str = PASSWORD) -> Account:
        name = f"{prefix}{next(_serial)}"
        return Account(prosody.register(name, password), password)

    return make


def gateway_config(prosody: ProsodyServer, config_file: Path | None = None,
                   **overrides: Any) -> config.Config:
    flags: dict[str, Any] = {
        "domain": [prosody.domain], "listen": "127.0.0.1:0",
        "xmpp_server": f"127.0.0.1:{prosody.c2s_port}", "ca_file": str(prosody.cert_file),
        "connect_timeout": "5", "ack_timeout": "5",
    }
    flags.update(overrides)
    return config.load(flags, environ={}, config_file=config_file)


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start_gateway(prosody: ProsodyServer) -> AsyncIterator[GatewayFactory]:
    started: list[Gateway] = []

    async def start(**overrides: Any) -> Gateway:
        gateway = Gateway(gateway_config(prosody, **overrides))
        await gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> Gateway:
    return await start_gateway()


ReceiverFactory = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def receiver(prosody: ProsodyServer) -> AsyncIterator[ReceiverFactory]:
    """``await receiver(account)``: a client of that account, online and listening.

    ``receipts=True`` makes it answer delivery receipt requests (XEP-0184)."""
    made: list[Receiver] = []

    async def make(who: Account, resource: str = "receiver", receipts: bool = False) -> Receiver:
        client = Receiver(who.jid, who.password, prosody.c2s_port, prosody.cert_file,
                          resource=resource, receipts=receipts)
        await client.start()
        made.append(client)
        return client

    yield make
    for client in made:
        await client.stop()


@dataclass
class Reply:
    status: int
    headers: CIMultiDict[str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Client:
    """A thin HTTP client for the gateway under test."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def request(self, method: str, url: str, *, data: bytes | str | None = None,
                      headers: dict[str, str] | None = None) -> Reply:
        skip = () if headers and "Content-Type" in headers else ("Content-Type",)
        async with self.session.request(method, url, data=data, headers=headers,
                                        skip_auto_headers=skip) as resp:
            return Reply(resp.status, CIMultiDict(resp.headers), await resp.text())

    async def post(self, gateway: Gateway, path: str, data: bytes | str, *,
                   sender: Account | None = None, user: str | None = None,
                   password: str | None = None, content_type: str | None = "text/plain",
                   headers: dict[str, str] | None = None) -> Reply:
        all_headers = dict(headers or {})
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        if sender is not None or user is not None:
            assert sender is not None or password is not None
            all_headers["Authorization"] = basic(
                user if user is not None else sender.jid,  # type: ignore[union-attr]
                password if password is not None else sender.password)  # type: ignore[union-attr]
        return await self.request("POST", gateway.url + path, data=data, headers=all_headers)


@pytest.fixture
async def http() -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session)


# The real web application in front of xmpp_post.testing.FakeRelay: HTTP-side tests that
# start nothing.
FakeClient = TestClient[aiohttp.web.Request, aiohttp.web.Application]
MakeClient = Callable[..., Awaitable[tuple[FakeClient, FakeRelay]]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """``await make_client(handler=None, **settings)``: a test client of the app for the
    domain example.org with those settings, and its fake relay."""
    clients: list[FakeClient] = []

    async def make(handler: Handler | None = None, **settings: Any) -> tuple[FakeClient, FakeRelay]:
        relay = FakeRelay(handler)
        cfg = config.load({"domain": ["example.org"], **settings}, environ={})
        client: FakeClient = TestClient(TestServer(web_app(cfg, relay)))
        await client.start_server()
        clients.append(client)
        return client, relay

    yield make
    for client in clients:
        await client.close()
