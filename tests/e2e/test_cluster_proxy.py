"""Gateways behind a real HAProxy running deploy/haproxy.cfg, sharing a real Redis: the
client's real address, an instance SIGKILLed under load, an instance drained by SIGTERM
under load."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from pathlib import Path

import pytest

from tests.helpers import Account, AccountFactory, Client, ReceiverFactory
from tests.helpers.cluster import (
    HAPROXY_CFG,
    Load,
    cluster,
    post,
    received_exactly,
    secret_file,
    shared_gateways,
)
from tests.helpers.faults import client_from, eventually
from xmpp_post.lab.haproxy import HaproxyServer
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.redis_server import RedisServer


def peers(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The client address of each message request's log line."""
    fields = [getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == "request"]
    return [f["peer"] for f in fields if f["method"] == "POST"]


@pytest.mark.parametrize("mode", ["proxy-protocol", "x-forwarded-for"])
async def test_the_real_client_address_is_logged_and_throttled_through_the_proxy(
        mode: str, prosody: ProsodyServer, redis_server: RedisServer, tmp_path: Path,
        http: Client, account: AccountFactory, caplog: pytest.LogCaptureFixture) -> None:
    alice, bob = account("alice"), account("bob")
    options: dict[str, object] = {"trusted_proxy": ["127.0.0.1/32"]}  # HAProxy's address
    if mode == "proxy-protocol":
        options["proxy_protocol"] = True
    async with shared_gateways(prosody, 2, redis_server.url, secret_file(tmp_path),
                               auth_failure_limit="2", **options) as gws:
        haproxy = HaproxyServer(HAPROXY_CFG.read_text(), [
            (f"gw{n + 1}", "127.0.0.1", gw.port) for n, gw in enumerate(gws)],
            forwardfor=mode == "x-forwarded-for")
        try:
            await asyncio.to_thread(haproxy.start)
            await asyncio.to_thread(haproxy.wait_for, {"gw1": "UP", "gw2": "UP"})
            caplog.set_level(logging.INFO, logger="xmpp_post")
            forged = {"X-Forwarded-For": "198.51.100.7"}
            async with client_from("127.0.0.31") as attacker:
                for n in range(3):
                    reply = await post(attacker, haproxy.url, f"/msg/{bob.local}", "x",
                                       Account(alice.jid, f"guess {n}"), forged)
                    assert reply.status == (401 if n < 2 else 429), reply.text
            async with client_from("127.0.0.32") as other:  # another client: not throttled
                reply = await post(other, haproxy.url, f"/msg/{bob.local}", "x",
                                   Account(alice.jid, "guess"), forged)
                assert reply.status == 401
            assert peers(caplog) == ["127.0.0.31"] * 3 + ["127.0.0.32"]
        finally:
            haproxy.close()
        if mode == "x-forwarded-for":  # straight to an instance, not from a trusted proxy
            caplog.clear()
            async with client_from("127.0.0.33") as direct:
                await post(direct, gws[0].url, f"/msg/{bob.local}", "x",
                           Account(alice.jid, "guess"), forged)
            assert peers(caplog) == ["127.0.0.33"]


async def test_an_instance_killed_under_load_every_201_is_delivered_and_haproxy_routes_around(
        prosody: ProsodyServer, redis_server: RedisServer, tmp_path: Path, http: Client,
        account: AccountFactory, receiver: ReceiverFactory) -> None:
    bob = account("bob")
    senders = [account("sender") for _ in range(6)]
    inbox = await receiver(bob)
    async with cluster(prosody, tmp_path, redis_server.url) as gateways:
        load = Load(http, gateways.haproxy.url, senders, bob.jid)
        async with load.running():
            await eventually(lambda: len(load.accepted) >= 30, timeout=20)
            victim = gateways.busiest()
            victim.signal(signal.SIGKILL)
            await asyncio.to_thread(gateways.haproxy.wait_for,
                                    {gateways.name_of(victim): "DOWN"})
            after_down = load.snapshot()
            await eventually(lambda: all(load.accepted_per_sender[s] >= n + 3
                                         for s, n in after_down.items()), timeout=20)
        assert victim.wait(5) == -signal.SIGKILL
    # What was in flight on the killed instance failed (HAProxy answers 502, or closes the
    # client's connection); requests sent to it before HAProxy noticed were retried on
    # another instance (connection refused: nothing was sent). Every sender, those of the
    # killed instance included, was served again afterwards.
    assert set(load.refused) <= {"502", "503", "ServerDisconnectedError"}, load.refused
    assert sum(load.refused.values()) <= len(senders), load.refused
    await received_exactly(inbox, load.accepted)


async def test_an_instance_stopped_under_load_drains_and_nothing_in_flight_is_lost(
        prosody: ProsodyServer, redis_server: RedisServer, tmp_path: Path, http: Client,
        account: AccountFactory, receiver: ReceiverFactory) -> None:
    bob = account("bob")
    senders = [account("sender") for _ in range(6)]
    inbox = await receiver(bob)
    async with cluster(prosody, tmp_path, redis_server.url,
                       extra=["--drain-seconds", "1.5"]) as gateways:
        load = Load(http, gateways.haproxy.url, senders, bob.jid)
        async with load.running():
            await eventually(lambda: len(load.accepted) >= 30, timeout=20)
            leaving = gateways.busiest()
            leaving.signal(signal.SIGTERM)
            await asyncio.to_thread(gateways.haproxy.wait_for,
                                    {gateways.name_of(leaving): "DOWN"})
            assert await asyncio.to_thread(leaving.wait, 20) == 0
            # HAProxy took it out because /readyz failed, before it stopped listening:
            assert re.search(rf"{gateways.name_of(leaving)} is DOWN, reason: Layer7 wrong "
                             r"status, code: 503", gateways.haproxy.log_file.read_text())
            after_exit = load.snapshot()
            await eventually(lambda: all(load.accepted_per_sender[s] >= n + 3
                                         for s, n in after_exit.items()), timeout=20)
        log = leaving.log_file.read_text()
        assert "draining seconds=1.5" in log and "stopped" in log
    assert load.refused == {}  # not one request failed
    await received_exactly(inbox, load.accepted)
