"""Unit tests: nothing is started (no server, no process but a short Python one); the
XMPP side is ``xmpp_post.testing.FakeRelay``. The folder runs in about 12 s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.helpers import FakeClient, MakeClient
from xmpp_post import config
from xmpp_post.service import web_app
from xmpp_post.testing import FakeRelay, Handler, ManualClock

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is marked ``unit`` (``-m unit``)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.unit)


@pytest.fixture
async def loop_clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The running event loop's clock, made a ``ManualClock``: a timer of the loop
    (``call_at``, ``asyncio.timeout``) fires once the test moves the clock past it."""
    loop = asyncio.get_running_loop()
    clock = ManualClock(loop.time())
    monkeypatch.setattr(loop, "time", clock)
    return clock


# The real web application in front of xmpp_post.testing.FakeRelay.
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
