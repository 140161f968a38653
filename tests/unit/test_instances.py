"""Settings for several instances, without starting anything: the real client address
behind trusted proxies, the state secret file, the shared-state fallback, draining."""

from __future__ import annotations

import base64
import ipaddress
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from xmpp_post import config
from xmpp_post.errors import ConfigError, LoginRefused, StateUnavailable
from xmpp_post.http.clients import TrustedProxies, network_of
from xmpp_post.model import OutgoingMessage, Receipt, Sender
from xmpp_post.service import Gateway, memory_guards, web_app
from xmpp_post.testing import FakeRelay

Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]
TRUSTED = TrustedProxies([ipaddress.ip_network("10.0.0.0/8"),
                          ipaddress.ip_network("2001:db8::/32")])


@pytest.mark.parametrize(("peer", "header", "client"), [
    ("10.0.0.1", ["203.0.113.5"], "203.0.113.5"),
    ("10.0.0.1", ["198.51.100.1, 203.0.113.5, 10.0.0.2"], "203.0.113.5"),  # left: forgeable
    ("10.0.0.1", ["198.51.100.1", "203.0.113.5"], "203.0.113.5"),  # repeated header
    ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # all proxies: the farthest
    ("10.0.0.1", ["[2001:db8::1]:443, 203.0.113.5:1234"], "203.0.113.5"),
    ("10.0.0.1", ["::ffff:203.0.113.5"], "203.0.113.5"),
    ("10.0.0.1", ["203.0.113.5, garbage"], None),  # the nearest hop is unreadable: the peer
    ("10.0.0.1", ["fe80::1%zz"], None),  # a zone id is free text: unreadable too
    ("10.0.0.1", ["203.0.113.5, fe80::1%zz, 10.0.0.2"], "10.0.0.2"),
    ("2001:db8::5%eth0", ["203.0.113.5"], "203.0.113.5"),  # the kernel's zone: the peer
    ("10.0.0.1", [], None),
    ("192.0.2.1", ["203.0.113.5"], None),  # an untrusted peer is not believed
    ("2001:db8::5", ["2001:db8::9, 2001:db9::1"], "2001:db9::1"),
])
def test_x_forwarded_for_is_read_from_the_right(peer: str, header: list[str],
                                                client: str | None) -> None:
    assert TRUSTED.client(peer, header) == client


def _load(**flags: Any) -> config.Config:
    return config.load({"domain": ["example.org"], **flags}, environ={})


def secret(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "state-secret"
    path.write_bytes(content)
    path.chmod(mode)
    return path


def test_the_state_secret_is_read_once_at_load(tmp_path: Path) -> None:
    path = secret(tmp_path, b"k" * 40 + b"\n")
    cfg = _load(redis_url="redis://127.0.0.1:6379/0", state_secret_file=str(path))
    assert cfg.state_secret == b"k" * 40
    assert b"k" * 40 not in repr(cfg).encode()


@pytest.mark.parametrize(("content", "mode", "problem"), [
    (b"k" * 40, 0o640, "group or others"),
    (b"k" * 40, 0o604, "group or others"),
    (b"short\n", 0o600, "at least 32"),
])
def test_a_loose_or_short_state_secret_is_refused(tmp_path: Path, content: bytes, mode: int,
                                                  problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(state_secret_file=str(secret(tmp_path, content, mode)))
    assert caught.value.setting == "state_secret_file" and problem in caught.value.problem


@pytest.mark.parametrize(("flags", "setting"), [
    ({"redis_url": "redis://127.0.0.1:6379"}, "state_secret_file"),  # no shared key
    ({"redis_url": "http://127.0.0.1:6379"}, "redis_url"),
    ({"trusted_proxy": ["10.0.0.0/33"]}, "trusted_proxy"),
    ({"trusted_proxy": ["proxy.example.org"]}, "trusted_proxy"),
    ({"proxy_protocol": True}, "trusted_proxy"),  # who may send the PROXY header?
    ({"drain_seconds": "-1"}, "drain_seconds"),
    ({"redis_timeout": "0"}, "redis_timeout"),
    ({"state_secret_file": "/nonexistent/secret"}, "state_secret_file"),
])
def test_bad_instance_settings_name_the_setting(flags: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(**flags)
    assert caught.value.setting == setting


async def _refuse(sender: Sender, message: OutgoingMessage) -> Receipt:
    raise LoginRefused("not authorized", condition="not-authorized")


@pytest.fixture
async def behind_proxy() -> AsyncIterator[Client]:
    cfg = _load(trusted_proxy=["127.0.0.1/32"], auth_failure_limit="2")
    async with TestClient(TestServer(web_app(cfg, FakeRelay(_refuse)))) as client:
        yield client


def _post(client: Client, forwarded_for: str) -> Any:
    auth = "Basic " + base64.b64encode(b"alice:guess").decode()
    return client.post("/msg/bob", data="hi", headers={
        "Authorization": auth, "Content-Type": "text/plain", "X-Forwarded-For": forwarded_for})


async def test_a_trusted_proxy_names_the_client_for_the_throttle_and_the_log(
        behind_proxy: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xmpp_post")
    for _ in range(2):
        assert (await _post(behind_proxy, "203.0.113.5")).status == 401
    assert (await _post(behind_proxy, "203.0.113.5")).status == 429
    assert (await _post(behind_proxy, "203.0.113.6")).status == 401  # another client
    peers = [r.fields["peer"] for r in caplog.records  # type: ignore[attr-defined]
             if r.getMessage() == "request"]
    assert peers == ["203.0.113.5"] * 3 + ["203.0.113.6"]


async def test_an_ipv6_client_is_counted_by_its_64_not_by_each_address(
        behind_proxy: Client, caplog: pytest.LogCaptureFixture) -> None:
    """One host picks any address of its /64: a fresh address is no fresh allowance."""
    caplog.set_level(logging.INFO, logger="xmpp_post")
    for forged in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::7"):
        assert (await _post(behind_proxy, forged)).status == 401
    assert (await _post(behind_proxy, "2001:db8:1:2:abcd::9")).status == 429
    assert (await _post(behind_proxy, "2001:db8:1:3::1")).status == 401  # another /64
    peers = [r.fields["peer"] for r in caplog.records  # type: ignore[attr-defined]
             if r.getMessage() == "request"]
    assert peers[-1] == "2001:db8:1:3::1"  # the log keeps the whole address


@pytest.mark.parametrize(("address", "network"), [
    ("203.0.113.5", "203.0.113.5"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("::ffff:203.0.113.5", "203.0.113.5"),
    ("fe80::1%eth0", "fe80::/64"),
    ("unknown", "unknown"),
])
def test_the_network_limits_count_by(address: str, network: str) -> None:
    assert network_of(address) == network


async def test_an_untrusted_peer_cannot_pick_its_address(
        caplog: pytest.LogCaptureFixture) -> None:
    cfg = _load(trusted_proxy=["10.0.0.0/8"], auth_failure_limit="2")
    caplog.set_level(logging.INFO, logger="xmpp_post")
    async with TestClient(TestServer(web_app(cfg, FakeRelay(_refuse)))) as client:
        for forged in ("203.0.113.5", "203.0.113.6"):
            assert (await _post(client, forged)).status == 401
        assert (await _post(client, "203.0.113.7")).status == 429  # all one peer
    peers = {r.fields["peer"] for r in caplog.records  # type: ignore[attr-defined]
             if r.getMessage() == "request"}
    assert peers == {"127.0.0.1"}


class _DownThrottle:
    async def begin(self, account: str, address: str, proof: bytes) -> None:
        raise StateUnavailable("redis is down", retry_after=3)

    async def end(self, account: str, address: str, proof: bytes, outcome: str) -> None:
        raise AssertionError("no end without a begin")


@pytest.mark.parametrize(("verified", "status"), [(True, 201), (False, 503)])
async def test_a_sender_with_a_proven_session_needs_no_throttle(
        verified: bool, status: int) -> None:
    cfg = _load()
    guards = replace(memory_guards(cfg), throttle=_DownThrottle(),
                     verified=lambda sender: verified)
    relay = FakeRelay()
    async with TestClient(TestServer(web_app(cfg, relay, guarded_by=guards))) as client:
        resp = await client.post("/msg/bob", data="hi", headers={
            "Authorization": "Basic " + base64.b64encode(b"alice:pw").decode(),
            "Content-Type": "text/plain"})
        assert resp.status == status
        if status == 503:
            assert (await resp.json())["error"] == "state_unavailable"
            assert resp.headers["Retry-After"] == "3" and relay.sent == []


async def test_draining_makes_readyz_503_and_closes_connections() -> None:
    gateway = Gateway(_load(listen="127.0.0.1:0"), relay=FakeRelay())
    await gateway.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(gateway.url + "/readyz") as resp:
                assert resp.status == 200
            await gateway.drain(0)
            async with http.get(gateway.url + "/readyz") as resp:
                assert resp.status == 503 and "draining" in (await resp.json())["reason"]
                assert resp.headers["Connection"] == "close"
    finally:
        await gateway.stop()
