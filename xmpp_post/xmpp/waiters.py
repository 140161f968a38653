"""Futures waiting for a stanza that answers another, matched by a key, first come first served.

Used for the replies the gateway waits for after sending a message: the room's reflection
of a group chat message and the recipient's delivery receipt. Clients may choose stanza
ids, so two waiters can share a key; they are resolved in the order they were made,
which is the order the answers come back in.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Waiters(Generic[T]):
    """``expect(key)`` before sending, ``resolve(key, value)`` when the answer arrives."""

    def __init__(self) -> None:
        self._waiting: dict[Hashable, deque[asyncio.Future[T]]] = {}

    def expect(self, key: Hashable) -> asyncio.Future[T]:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, deque()).append(future)
        return future

    def resolve(self, key: Hashable, value: T) -> bool:
        """Give ``value`` to the oldest waiter on ``key``; False if none waits."""
        queue = self._waiting.get(key)
        while queue:
            future = queue.popleft()
            if not future.done():
                future.set_result(value)
                self._tidy(key)
                return True
        self._tidy(key)
        return False

    def forget(self, key: Hashable, future: asyncio.Future[T]) -> None:
        """Stop waiting (after a timeout, say); cancels the future if still pending."""
        queue = self._waiting.get(key)
        if queue is not None and future in queue:
            queue.remove(future)
            self._tidy(key)
        future.cancel()

    def fail_all(self, error: BaseException) -> None:
        for queue in self._waiting.values():
            for future in queue:
                if not future.done():
                    future.set_exception(error)
        self._waiting.clear()

    def _tidy(self, key: Hashable) -> None:
        if not self._waiting.get(key, True):
            del self._waiting[key]
