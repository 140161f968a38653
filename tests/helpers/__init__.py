"""Helpers shared by the tests: HTTP clients of the gateway, test accounts, the
configuration of a gateway in front of the test server, Prometheus samples. Fixtures live
in the conftest.py files (``tests/``, ``tests/unit/``, ``tests/e2e/``); the modules beside
this one hold helpers of one subject (several instances, faults, tokens and webhooks,
raw HTTP, the state contract, rooms, ntfy publishing)."""

from __future__ import annotations

import base64
import itertools
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

from xmpp_post import config
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.service import Gateway
from xmpp_post.testing import FakeRelay

PASSWORD = "correct horse battery staple"
# Property tests draw a tenth of the examples their settings name, so tests/unit/ runs in
# seconds; the whole suite (scripts/test, and so CI) sets XMPP_POST_TEST_EXAMPLES=full.
FULL_EXAMPLES = os.environ.get("XMPP_POST_TEST_EXAMPLES") == "full"
serial = itertools.count()  # fresh account and room names


@dataclass(frozen=True)
class Account:
    jid: str
    password: str

    @property
    def local(self) -> str:
        return self.jid.partition("@")[0]


AccountFactory = Callable[..., Account]


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


ReceiverFactory = Callable[..., Awaitable[Receiver]]


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


# The real web application in front of xmpp_post.testing.FakeRelay: HTTP-side tests that
# start nothing.
FakeClient = TestClient[aiohttp.web.Request, aiohttp.web.Application]
MakeClient = Callable[..., Awaitable[tuple[FakeClient, FakeRelay]]]




def examples(written: int) -> int:
    """How many examples a property test draws: ``written``, or a tenth of it (at least
    2) unless the whole suite runs."""
    return written if FULL_EXAMPLES else max(2, written // 10)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return 0.0
