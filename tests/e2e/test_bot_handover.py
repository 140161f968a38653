"""A bot handed from one instance to another (issue 25, several instances), against a
real Redis, a real Prosody with its archive (mod_mam) and two gateway processes: the
instance holding the bot is SIGKILLed with deliveries waiting, the other delivers each
of them once, in order, under the webhook-id the first used; the first, started again
and given the bot back, delivers none of them again. And the fencing of the shared
cursor (``bots.handover``), script by script, on the real Redis."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from tests.helpers import PASSWORD, metric
from tests.helpers.bot_endpoint import Delivery, Endpoint, bot_config, new_secret
from tests.helpers.cluster import secret_file
from tests.helpers.faults import ServerFactory
from xmpp_post.bots.handover import CURSOR_TTL, MARGIN, RedisHandover
from xmpp_post.bots.lease import BotLease
from xmpp_post.lab.instances import GatewayProcess
from xmpp_post.lab.receiver import Receiver
from xmpp_post.lab.redis_server import RedisServer


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_server.url)
    yield redis
    await redis.aclose()


def handover_on(redis: Redis, lease: BotLease, name: str) -> RedisHandover:
    return RedisHandover(redis, lease_key=lease.key, owner=lease.owner,
                         cursor_key=f"test:{name}:cursor",
                         handled_key=lambda webhook_id: f"test:{name}:handled:{webhook_id}",
                         keep=60.0)


async def test_only_the_lease_holder_moves_the_cursor(client: Redis) -> None:
    name = f"fence{time.monotonic_ns()}"
    first = BotLease(client, f"test:{name}:lease")
    second = BotLease(client, first.key)
    old, new = handover_on(client, first, name), handover_on(client, second, name)
    assert await first.acquire()
    assert await old.cursor() is None
    assert await new.anchor("since:2026-12-07T10:00:00Z") is None  # not the holder
    assert await old.anchor("id:a1") == "id:a1"
    assert await old.anchor("id:a0") == "id:a1"  # set already
    assert await old.record("msg_1", "a2")
    assert await old.cursor() == "id:a2"
    await client.delete(first.key)  # the first's lease ran out; the second takes it
    assert await second.acquire()
    assert await new.record("msg_3", "a3")
    assert not await old.record("msg_2", "a2")  # late: recorded, the cursor unmoved
    assert await new.cursor() == "id:a3"
    assert await new.handled("msg_2") and await new.handled("msg_1")
    assert not await new.handled("msg_4")
    ttl = await client.pttl(f"test:{name}:handled:msg_2")
    assert (60 + MARGIN - 5) * 1000 < ttl <= (60 + MARGIN) * 1000
    assert not await new.record("msg_5", None)  # no archive id: recorded only
    assert await new.cursor() == "id:a3" and await new.handled("msg_5")
    cursor = f"test:{name}:cursor"  # every key expires by itself; the holder keeps it
    assert 0 < await client.pttl(cursor) <= CURSOR_TTL * 1000
    await client.pexpire(cursor, 60_000)
    assert not await old.keep() and await client.pttl(cursor) <= 60_000
    assert await new.keep() and await client.pttl(cursor) > 60_000


async def test_an_unreadable_cursor_is_ignored(client: Redis) -> None:
    name = f"junk{time.monotonic_ns()}"
    lease = BotLease(client, f"test:{name}:lease")
    handover = handover_on(client, lease, name)
    await client.set(f"test:{name}:cursor", b"\xff" * 10)
    assert await handover.cursor() is None
    await client.set(f"test:{name}:cursor", "id:" + "x" * 500)
    assert await handover.cursor() is None
    await client.set(f"test:{name}:cursor", "after:x")
    assert await handover.cursor() is None


async def until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Wait until ``check()`` holds: a child process's /metrics has no event to wait on."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def metrics(instance: GatewayProcess) -> str:
    async with aiohttp.ClientSession() as session, session.get(
            instance.url + "/metrics") as got:
        return await got.text()


async def test_a_killed_holders_waiting_deliveries_are_delivered_once_by_the_next(
        own_prosody: ServerFactory, redis_server: RedisServer, tmp_path: Path) -> None:
    server = own_prosody(extra_modules=["mam"], extra_config=[
        'archive_expires_after = "1d"', "default_archive_policy = true"])
    bot = server.register("bot", PASSWORD)
    alice = server.register("alice", PASSWORD)
    down = True

    def answer(_d: Delivery) -> web.Response:
        return web.Response(status=503 if down else 204)

    endpoint = await Endpoint(new_secret(), answer=answer).start()
    path = bot_config(tmp_path, bot, PASSWORD, endpoint.url, endpoint.secret)
    secret = secret_file(tmp_path)

    def instance(n: int, log: str) -> GatewayProcess:
        return GatewayProcess([
            "--domain", server.domain, "--xmpp-server", f"127.0.0.1:{server.c2s_port}",
            "--ca-file", str(server.cert_file), "--state-dir", str(tmp_path / f"s{n}"),
            "--config", str(path), "--redis-url", redis_server.url,
            "--state-secret-file", str(secret)], tmp_path / f"{log}.log")

    async def queued(process: GatewayProcess, count: int) -> bool:
        text = await metrics(process)
        return metric(text, "xmpp_post_bot_queue_length", bot="b") == count

    client = Receiver(alice, PASSWORD, server.c2s_port, server.cert_file)
    await client.start()
    first, second, again = instance(1, "first"), instance(2, "second"), instance(1, "again")
    bodies = [f"message {n}" for n in range(5)]
    try:
        await asyncio.to_thread(first.start)
        client.send(bot, bodies[0])
        await endpoint.wait_tries(1)  # the first holds the bot: its session got it
        await asyncio.to_thread(second.start)  # waits for the lease
        for body in bodies[1:]:
            client.send(bot, body)
        await until(lambda: queued(first, 5), 20)
        first.signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait)
        tried_by_first = {d.json["body"]: d.id for d in endpoint.tries}
        down = False
        delivered = await endpoint.wait_delivered(5, timeout=60)  # by the second
        assert [d.json["body"] for d in delivered] == bodies
        ids = {d.json["body"]: d.id for d in delivered}
        assert len(set(ids.values())) == 5
        assert all(ids[body] == sent for body, sent in tried_by_first.items())
        for d in endpoint.tries:  # one message, one webhook-id, on either instance
            assert ids[d.json["body"]] == d.id and d.verified
        text = await metrics(second)
        assert metric(text, "xmpp_post_bot_deliveries_total", bot="b",
                      outcome="delivered") == 5

        # The first, started again, waits; given the bot back, it finds its five
        # waiting items handled by the second, and delivers none of them again.
        await asyncio.to_thread(again.start)
        tries = len(endpoint.tries)
        await asyncio.to_thread(second.stop)  # gives the lease up
        client.send(bot, "after")
        later = await endpoint.wait_delivered(6, timeout=60)
        assert [d.json["body"] for d in endpoint.tries[tries:]] == ["after"]
        assert [d.json["body"] for d in later] == [*bodies, "after"]
        assert len({d.id for d in later}) == 6
        text = await metrics(again)
        assert metric(text, "xmpp_post_bot_skipped_total", bot="b",
                      reason="handled_elsewhere") == 5
        assert metric(text, "xmpp_post_bot_deliveries_total", bot="b",
                      outcome="delivered") == 1
    finally:
        for process in (first, second, again):
            process.terminate()
        await client.stop()
        await endpoint.stop()
