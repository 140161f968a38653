"""The contract every state implementation must pass (``state.IdempotencyStore`` and
``state.LoginThrottle``). A test module binds it to an implementation by providing the
``harness`` fixture; see ``test_state_memory.py``."""

from __future__ import annotations

import asyncio
from typing import Protocol

import pytest

from xmpp_post.errors import TooManyRequests, Unprocessable
from xmpp_post.state import IdempotencyStore, LoginThrottle, StateKey, StoredAnswer

KEY = StateKey(b"k" * 32)


def proof(account: str, password: str) -> bytes:
    return KEY.digest("login", account, password)


class Harness(Protocol):
    def store(self, window: float, max_entries: int = 1000) -> IdempotencyStore: ...

    def throttle(self, *, window: float, pair_limit: int, address_limit: int,
                 account_limit: int) -> LoginThrottle: ...

    async def advance(self, seconds: float) -> None:
        """Let time pass for the implementation (a fake clock, or real time)."""
        ...


async def fail(throttle: LoginThrottle, account: str, address: str,
               password: str = "guess") -> None:
    await throttle.begin(account, address, proof(account, password))
    await throttle.end(account, address, proof(account, password), "failed")


class StateContract:
    async def test_throttle_window_slides_and_retry_after_counts_down(
            self, harness: Harness) -> None:
        throttle = harness.throttle(window=2, pair_limit=3, address_limit=100,
                                    account_limit=100)
        for _ in range(3):
            await fail(throttle, "a@x", "1.2.3.4")
        with pytest.raises(TooManyRequests) as caught:
            await throttle.begin("a@x", "1.2.3.4", proof("a@x", "guess"))
        assert caught.value.retry_after is not None and 1 <= caught.value.retry_after <= 2
        await throttle.begin("a@x", "5.6.7.8", proof("a@x", "right"))  # another address
        await throttle.end("a@x", "5.6.7.8", proof("a@x", "right"), "unknown")
        await harness.advance(2.1)
        await throttle.begin("a@x", "1.2.3.4", proof("a@x", "guess"))

    async def test_address_limit_covers_every_account(self, harness: Harness) -> None:
        throttle = harness.throttle(window=60, pair_limit=100, address_limit=3,
                                    account_limit=100)
        for n in range(3):
            await fail(throttle, f"u{n}@x", "9.9.9.9")
        with pytest.raises(TooManyRequests):
            await throttle.begin("other@x", "9.9.9.9", proof("other@x", "pw"))

    async def test_account_lock_spares_a_password_the_server_accepted(
            self, harness: Harness) -> None:
        throttle = harness.throttle(window=60, pair_limit=100, address_limit=100,
                                    account_limit=2)
        await throttle.begin("a@x", "10.0.0.1", proof("a@x", "right"))
        await throttle.end("a@x", "10.0.0.1", proof("a@x", "right"), "succeeded")
        await fail(throttle, "a@x", "10.0.0.2")
        await fail(throttle, "a@x", "10.0.0.3")
        with pytest.raises(TooManyRequests):
            await throttle.begin("a@x", "10.0.0.4", proof("a@x", "wrong"))
        await throttle.begin("a@x", "10.0.0.4", proof("a@x", "right"))
        with pytest.raises(TooManyRequests):
            await throttle.begin("a@x", "10.0.0.4", proof("a@x", "righ"))

    async def test_success_forgives_the_pair(self, harness: Harness) -> None:
        throttle = harness.throttle(window=60, pair_limit=2, address_limit=100,
                                    account_limit=100)
        await fail(throttle, "a@x", "1.1.1.1")
        await throttle.begin("a@x", "1.1.1.1", proof("a@x", "right"))
        await throttle.end("a@x", "1.1.1.1", proof("a@x", "right"), "succeeded")
        await fail(throttle, "a@x", "1.1.1.1")
        await throttle.begin("a@x", "1.1.1.1", proof("a@x", "right"))

    async def test_logins_in_flight_count_until_they_end(self, harness: Harness) -> None:
        throttle = harness.throttle(window=60, pair_limit=3, address_limit=100,
                                    account_limit=100)

        def guess(n: int) -> bytes:
            return proof("a@x", f"guess {n}")

        for n in range(3):  # three guesses at once: none has failed yet
            await throttle.begin("a@x", "1.1.1.1", guess(n))
        with pytest.raises(TooManyRequests) as caught:
            await throttle.begin("a@x", "1.1.1.1", guess(3))
        assert (caught.value.retry_after or 0) >= 1
        await throttle.begin("a@x", "1.1.1.1", guess(0))  # the same password is no new guess
        await throttle.begin("a@x", "2.2.2.2", guess(3))  # another pair
        await throttle.end("a@x", "2.2.2.2", guess(3), "unknown")
        for _ in range(2):
            await throttle.end("a@x", "1.1.1.1", guess(0), "unknown")
        await throttle.begin("a@x", "1.1.1.1", guess(3))  # in flight: 1, 2, 3
        with pytest.raises(TooManyRequests):
            await throttle.begin("a@x", "1.1.1.1", guess(4))
        await throttle.end("a@x", "1.1.1.1", guess(1), "failed")  # 1 failure + 2, 3
        with pytest.raises(TooManyRequests):
            await throttle.begin("a@x", "1.1.1.1", guess(4))
        await throttle.end("a@x", "1.1.1.1", guess(2), "unknown")  # 1 failure + 3
        await throttle.begin("a@x", "1.1.1.1", guess(4))

    async def test_logins_in_flight_count_for_the_address_and_the_account(
            self, harness: Harness) -> None:
        throttle = harness.throttle(window=60, pair_limit=100, address_limit=2,
                                    account_limit=2)
        await throttle.begin("u1@x", "3.3.3.3", proof("u1@x", "p"))
        await throttle.begin("u2@x", "3.3.3.3", proof("u2@x", "p"))
        with pytest.raises(TooManyRequests):  # a third account from that address
            await throttle.begin("u3@x", "3.3.3.3", proof("u3@x", "p"))
        await throttle.begin("u1@x", "4.4.4.4", proof("u1@x", "q"))
        with pytest.raises(TooManyRequests):  # a third password for u1, from anywhere
            await throttle.begin("u1@x", "5.5.5.5", proof("u1@x", "r"))

    async def test_a_password_the_server_accepted_is_not_a_guess_in_flight(
            self, harness: Harness) -> None:
        throttle = harness.throttle(window=60, pair_limit=2, address_limit=2,
                                    account_limit=2)
        right = proof("a@x", "right")
        await throttle.begin("a@x", "6.6.6.6", right)
        await throttle.end("a@x", "6.6.6.6", right, "succeeded")
        for _ in range(5):  # a busy owner: many requests at once, one known password
            await throttle.begin("a@x", "6.6.6.6", right)
        await throttle.begin("a@x", "6.6.6.6", proof("a@x", "guess"))
        await throttle.begin("b@x", "6.6.6.6", proof("b@x", "other"))
        with pytest.raises(TooManyRequests):  # two unverified in flight from there
            await throttle.begin("c@x", "6.6.6.6", proof("c@x", "third"))

    async def test_idempotency_replays_waits_and_expires(self, harness: Harness) -> None:
        store = harness.store(window=1)
        key = ("a@x", "k1")
        assert await store.claim(key, b"print") is None
        waiter = asyncio.create_task(store.claim(key, b"print"))
        await asyncio.sleep(0.05)
        assert not waiter.done()  # a duplicate waits for the first
        with pytest.raises(Unprocessable):
            await store.claim(key, b"other")
        answer = StoredAnswer(201, b"{}", "application/json", (("X-A", "1"),))
        await store.finish(key, answer)
        assert await asyncio.wait_for(waiter, 5) == answer
        assert await store.claim(key, b"print") == answer
        await harness.advance(1.1)
        assert await store.claim(key, b"other") is None  # forgotten after the window

    async def test_idempotency_releases_answers_that_may_change(
            self, harness: Harness) -> None:
        store = harness.store(window=600)
        assert await store.claim(("a@x", "k"), b"p") is None
        await store.finish(("a@x", "k"), StoredAnswer(503))
        assert await store.claim(("a@x", "k"), b"p") is None  # a 503 is not remembered
        await store.finish(("a@x", "k"), None)
        assert await store.claim(("a@x", "k"), b"q") is None  # nor a crashed request

    async def test_idempotency_keys_are_per_sender(self, harness: Harness) -> None:
        store = harness.store(window=600)
        assert await store.claim(("a@x", "k"), b"p") is None
        await store.finish(("a@x", "k"), StoredAnswer(201, b"a"))
        assert await store.claim(("b@x", "k"), b"other") is None
