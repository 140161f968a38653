"""The state shared in Redis (``state.redis``) against a real redis-server: the contract
every state passes, then what only a shared state must do (several clients as several
instances, leases, expiry, Redis going away)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.helpers.state_contract import StateContract, fail, proof
from xmpp_post.errors import StateUnavailable, TooManyRequests
from xmpp_post.lab.redis_server import RedisServer
from xmpp_post.state import StateKey, StoredAnswer
from xmpp_post.state.redis import RedisIdempotencyStore, RedisLoginThrottle, RedisState

ANSWER = StoredAnswer(201, b'{"id": "x"}', "application/json", (("X-A", "1"),))


class RedisHarness:
    """Real time (Redis keeps the clock); a fresh key, so nothing is shared across tests."""

    def __init__(self, url: str) -> None:
        self.state = RedisState(url, key=StateKey())

    def store(self, window: float, max_entries: int = 1000) -> RedisIdempotencyStore:
        return RedisIdempotencyStore(self.state, window=window, lease=30)

    def throttle(self, *, window: float, pair_limit: int, address_limit: int,
                 account_limit: int) -> RedisLoginThrottle:
        return RedisLoginThrottle(self.state, window=window, pair_limit=pair_limit,
                                  address_limit=address_limit, account_limit=account_limit)

    async def advance(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@pytest.fixture
async def harness(redis_server: RedisServer) -> AsyncIterator[RedisHarness]:
    made = RedisHarness(redis_server.url)
    yield made
    await made.state.close()


class TestRedisState(StateContract):
    pass


@pytest.fixture
async def instances(redis_server: RedisServer) -> AsyncIterator[list[RedisState]]:
    """Three clients with one shared key, as three gateway instances would be."""
    key = StateKey(b"s" * 32)
    states = [RedisState(redis_server.url, key=key) for _ in range(3)]
    yield states
    for state in states:
        await state.close()


async def test_a_retry_on_another_instance_waits_for_and_gets_the_first_answer(
        instances: list[RedisState]) -> None:
    first, second, third = (RedisIdempotencyStore(s, window=60, lease=30) for s in instances)
    key = ("alice@x", "retry-1")
    assert await first.claim(key, b"fp") is None
    waiting = [asyncio.create_task(store.claim(key, b"fp")) for store in (second, third)]
    await asyncio.sleep(0.1)
    assert not any(task.done() for task in waiting)
    await first.finish(key, ANSWER)
    assert await asyncio.wait_for(asyncio.gather(*waiting), 5) == [ANSWER, ANSWER]


async def test_one_owner_among_many_concurrent_claims(instances: list[RedisState]) -> None:
    stores = [RedisIdempotencyStore(s, window=60, lease=30) for s in instances] * 5
    key = ("alice@x", "race")
    claims = [asyncio.create_task(store.claim(key, b"fp")) for store in stores]
    await asyncio.wait(claims, timeout=5, return_when=asyncio.FIRST_COMPLETED)  # the owner
    owners = [i for i, task in enumerate(claims) if task.done() and task.result() is None]
    assert len(owners) == 1
    await stores[owners[0]].finish(key, ANSWER)
    results = await asyncio.wait_for(asyncio.gather(*claims), 5)
    assert results.count(None) == 1 and results.count(ANSWER) == len(stores) - 1


async def test_an_unfinished_claim_is_taken_over_after_its_lease(
        instances: list[RedisState]) -> None:
    died = RedisIdempotencyStore(instances[0], window=60, lease=0.5)
    alive = RedisIdempotencyStore(instances[1], window=60, lease=0.5)
    key = ("alice@x", "owner-died")
    assert await died.claim(key, b"fp") is None  # and never finishes: the process died
    assert await asyncio.wait_for(alive.claim(key, b"fp"), 5) is None
    await died.finish(key, ANSWER)  # too late: no longer its key
    await alive.finish(key, StoredAnswer(201, b"second"))
    assert (await died.claim(key, b"fp")) == StoredAnswer(201, b"second")


async def test_guesses_spread_over_instances_are_counted_once(
        instances: list[RedisState]) -> None:
    throttles = [RedisLoginThrottle(s, window=60, pair_limit=5, address_limit=100,
                                    account_limit=100) for s in instances]
    for n in range(5):
        await fail(throttles[n % 3], "alice@x", "10.1.1.1")
    for throttle in throttles:
        with pytest.raises(TooManyRequests):
            await throttle.begin("alice@x", "10.1.1.1", proof("alice@x", "guess"))


async def test_logins_in_flight_count_across_instances(instances: list[RedisState]) -> None:
    one, two = (RedisLoginThrottle(s, window=60, pair_limit=2, address_limit=100,
                                   account_limit=100, lease=30)
                for s in instances[:2])
    await one.begin("bob@x", "10.2.2.2", proof("bob@x", "a"))
    await two.begin("bob@x", "10.2.2.2", proof("bob@x", "b"))
    with pytest.raises(TooManyRequests):  # two guesses in flight fill the pair's limit
        await one.begin("bob@x", "10.2.2.2", proof("bob@x", "c"))
    await two.end("bob@x", "10.2.2.2", proof("bob@x", "b"), "unknown")
    await one.begin("bob@x", "10.2.2.2", proof("bob@x", "c"))


async def test_every_key_expires_and_names_nothing(redis_server: RedisServer) -> None:
    state = RedisState(redis_server.url, key=StateKey(b"e" * 32))
    try:
        store = RedisIdempotencyStore(state, window=60, lease=30)
        throttle = RedisLoginThrottle(state, window=60, pair_limit=5, address_limit=5,
                                      account_limit=5, lease=30)
        await fail(throttle, "carol@example.org", "192.0.2.7")
        await throttle.begin("carol@example.org", "192.0.2.8", proof("carol@example.org", "p"))
        await throttle.end("carol@example.org", "192.0.2.8", proof("carol@example.org", "p"),
                           "succeeded")
        assert await store.claim(("carol@example.org", "k"), b"fp") is None
        waiter = asyncio.create_task(store.claim(("carol@example.org", "k"), b"fp"))
        await asyncio.sleep(0.05)
        await store.finish(("carol@example.org", "k"), ANSWER)
        await waiter
        keys = [k async for k in state.client.scan_iter("xmpp-post:*")]
        assert len(keys) >= 5
        for name in keys:
            assert await state.client.pttl(name) > 0, name
            assert b"carol" not in name and b"192.0.2" not in name
    finally:
        await state.close()


async def test_redis_gone_refuses_decisions_and_recovers_by_itself() -> None:
    with RedisServer() as server:
        state = RedisState(server.url, key=StateKey(), timeout=1.0, retry_after=7)
        store = RedisIdempotencyStore(state, window=60, lease=30)
        throttle = RedisLoginThrottle(state, window=60, pair_limit=5, address_limit=5,
                                      account_limit=5)
        try:
            assert await store.claim(("d@x", "k1"), b"fp") is None
            server.stop()
            assert "unavailable" in (await state.problem() or "")
            with pytest.raises(StateUnavailable) as caught:
                await store.claim(("d@x", "k2"), b"fp")
            assert caught.value.retry_after == 7
            with pytest.raises(StateUnavailable):
                await throttle.begin("d@x", "10.0.0.1", b"p")
            await store.finish(("d@x", "k1"), ANSWER)  # logged, not raised
            await throttle.end("d@x", "10.0.0.1", b"p", "failed")
            server.start()  # empty, and without the scripts: they are loaded again
            assert await state.problem() is None
            assert await store.claim(("d@x", "k2"), b"fp") is None
            await throttle.begin("d@x", "10.0.0.1", b"p")
        finally:
            await state.close()
