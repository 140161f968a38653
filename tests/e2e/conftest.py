"""End-to-end tests: against a real Prosody the suite starts (one for the session, and
private ones for tests that crash theirs), real gateways, receiving clients, Redis,
HAProxy, Alertmanager and the console command."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    PASSWORD,
    Account,
    AccountFactory,
    GatewayFactory,
    ReceiverFactory,
    gateway_config,
    serial,
)
from tests.helpers.faults import ServerFactory
from tests.helpers.omemo import GatewayStarter, OmemoPeer, PeerStarter, state_secret
from xmpp_post.lab.alertmanager import AlertmanagerServer, installed
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.lab.redis_server import RedisServer
from xmpp_post.service import Gateway

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is marked ``e2e`` (``-m e2e``)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


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


@pytest.fixture
def account(prosody: ProsodyServer) -> AccountFactory:
    """Make a fresh account on the test server: ``account()`` or ``account("name")``."""

    def make(prefix: str = "user", password: str = PASSWORD) -> Account:
        name = f"{prefix}{next(serial)}"
        return Account(prosody.register(name, password), password)

    return make


@pytest.fixture
async def start_gateway(prosody: ProsodyServer) -> AsyncIterator[GatewayFactory]:
    started: list[Gateway] = []

    async def start(clock: Callable[[], float] = time.monotonic, **overrides: Any) -> Gateway:
        """A gateway with these settings; ``clock`` times its idle sessions and rooms."""
        gateway = Gateway(gateway_config(prosody, **overrides), clock=clock)
        await gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> Gateway:
    return await start_gateway()


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


@pytest.fixture(name="own_prosody")
def own_prosody_fixture() -> Iterator[ServerFactory]:
    """``own_prosody(**options)``: a started Prosody for this test alone (to crash)."""
    made: list[ProsodyServer] = []

    def make(**options: Any) -> ProsodyServer:
        server = ProsodyServer(**options)
        made.append(server)
        server.start()
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture
def alertmanager() -> Iterator[AlertmanagerServer]:
    """A private Alertmanager, not started yet (``start(config)``: its configuration may
    name the gateway's URL); closed after the test."""
    if not installed():
        pytest.fail("prometheus-alertmanager is not installed: run scripts/setup --test")
    server = AlertmanagerServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def pep_prosody() -> Iterator[ProsodyServer]:
    server = ProsodyServer(extra_modules=["pep", "mam"],
                           extra_config=['default_archive_policy = true'])
    server.start()
    yield server
    server.close()

@pytest.fixture
async def omemo_gateway(pep_prosody: ProsodyServer,
                        tmp_path: Path) -> AsyncIterator[GatewayStarter]:
    running: list[Gateway] = []
    secret = state_secret(tmp_path)

    async def start(state: str = "state", clock: Callable[[], float] = time.monotonic,
                    **overrides: Any) -> Gateway:
        settings: dict[str, Any] = {"state_dir": str(tmp_path / state),
                                    "state_secret_file": str(secret), **overrides}
        gateway = Gateway(gateway_config(pep_prosody, **settings), clock=clock)
        await gateway.start()
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        await gateway.stop()

@pytest.fixture
async def peer(pep_prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[PeerStarter]:
    made: list[OmemoPeer] = []

    async def start(jid: str, *options: str, store: str = "peer.json") -> OmemoPeer:
        client = OmemoPeer(pep_prosody, jid, PASSWORD, tmp_path / store, *options)
        made.append(client)
        return await client.start()

    yield start
    for client in made:
        await client.stop()
