"""The in-process state (``state.memory``): the contract, and its own memory bounds."""

from __future__ import annotations

import pytest

from tests.helpers.state_contract import StateContract, fail
from xmpp_post.state import StoredAnswer
from xmpp_post.state.memory import MemoryIdempotencyStore, MemoryLoginThrottle


class MemoryHarness:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def store(self, window: float, max_entries: int = 1000) -> MemoryIdempotencyStore:
        return MemoryIdempotencyStore(window=window, max_entries=max_entries, clock=self.clock)

    def throttle(self, *, window: float, pair_limit: int, address_limit: int,
                 account_limit: int) -> MemoryLoginThrottle:
        return MemoryLoginThrottle(window=window, pair_limit=pair_limit,
                                   address_limit=address_limit, account_limit=account_limit,
                                   clock=self.clock)

    async def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def harness() -> MemoryHarness:
    return MemoryHarness()


class TestMemoryState(StateContract):
    pass


async def test_throttle_memory_is_bounded() -> None:
    throttle = MemoryLoginThrottle(window=60, pair_limit=1, address_limit=1, account_limit=1,
                                   max_keys=10)
    for i in range(1000):
        await fail(throttle, f"user{i}@x", f"10.0.{i // 256}.{i % 256}")
    assert len(throttle._pairs._times) == 10 and len(throttle._accounts._times) == 10


async def test_idempotency_store_is_bounded() -> None:
    store = MemoryIdempotencyStore(window=600, max_entries=2)
    for n in range(5):
        assert await store.claim(("a@x", f"k{n}"), b"p") is None
        await store.finish(("a@x", f"k{n}"), StoredAnswer(201))
    assert len(store) == 2
