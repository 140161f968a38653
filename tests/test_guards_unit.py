"""The pure parts of the guards: sliding-window login throttle and the idempotency store."""

from __future__ import annotations

import asyncio

import pytest

from xmpp_post.errors import TooManyRequests, Unprocessable
from xmpp_post.idempotency import IdempotencyStore, StoredAnswer
from xmpp_post.ratelimit import AuthThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_window_slides_and_retry_after_is_exact() -> None:
    clock = Clock()
    throttle = AuthThrottle(window=60, pair_limit=3, address_limit=100, account_limit=100,
                            clock=clock)
    for step in range(3):
        throttle.check("a@x", "1.2.3.4", "guess")
        throttle.failed("a@x", "1.2.3.4")
        clock.now += 10 * (step + 1)  # failures at 1000, 1010, 1030
    clock.now = 1059.5
    with pytest.raises(TooManyRequests) as caught:
        throttle.check("a@x", "1.2.3.4", "guess")  # the first failure leaves at 1060
    assert caught.value.headers["Retry-After"] == "1"
    throttle.check("a@x", "5.6.7.8", "right")  # another address is not affected
    clock.now = 1060
    throttle.check("a@x", "1.2.3.4", "guess")


def test_account_lock_spares_a_password_the_server_accepted() -> None:
    clock = Clock()
    throttle = AuthThrottle(window=60, pair_limit=100, address_limit=100, account_limit=2,
                            clock=clock)
    throttle.succeeded("a@x", "10.0.0.1", "right")
    throttle.failed("a@x", "10.0.0.2")
    throttle.failed("a@x", "10.0.0.3")
    with pytest.raises(TooManyRequests):
        throttle.check("a@x", "10.0.0.4", "wrong")
    throttle.check("a@x", "10.0.0.4", "right")
    with pytest.raises(TooManyRequests):
        throttle.check("a@x", "10.0.0.4", "righ")


def test_throttle_memory_is_bounded() -> None:
    throttle = AuthThrottle(window=60, pair_limit=1, address_limit=1, account_limit=1,
                            max_keys=10)
    for i in range(1000):
        throttle.failed(f"user{i}@x", f"10.0.{i // 256}.{i % 256}")
    assert len(throttle._pairs._times) == 10 and len(throttle._accounts._times) == 10


async def test_idempotency_store_replays_waits_and_expires() -> None:
    clock = Clock()
    store = IdempotencyStore(window=600, max_entries=2, clock=clock)
    key = ("a@x", "k1")
    assert await store.claim(key, b"print") is None
    waiter = asyncio.create_task(store.claim(key, b"print"))
    await asyncio.sleep(0)
    assert not waiter.done()  # a duplicate waits for the first
    with pytest.raises(Unprocessable):
        await store.claim(key, b"other")
    answer = StoredAnswer(201, b"{}")
    store.finish(key, answer)
    assert await waiter == answer
    clock.now += 601
    assert await store.claim(key, b"other") is None  # forgotten after the window


async def test_idempotency_store_releases_retryable_answers_and_is_bounded() -> None:
    store = IdempotencyStore(window=600, max_entries=2)
    assert await store.claim(("a@x", "k"), b"p") is None
    store.finish(("a@x", "k"), StoredAnswer(503))
    assert await store.claim(("a@x", "k"), b"p") is None  # a 503 is not remembered
    store.finish(("a@x", "k"), StoredAnswer(201))
    for n in range(5):
        assert await store.claim(("a@x", f"other{n}"), b"p") is None
        store.finish(("a@x", f"other{n}"), StoredAnswer(201))
    assert len(store) == 2
