"""The lasting-state protocols (``state.lasting``) in this process: ``MemoryKeyValue`` and
``MemoryQueues``. Lost on restart: a feature that needs its state to last refuses to run
on these (``lasting.require_lasting``); they serve tests and the features that can
start afresh."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable

from xmpp_post.errors import Overloaded
from xmpp_post.state.lasting import Lasting, QueueItem, check_name


class MemoryKeyValue:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._values: dict[str, dict[str, tuple[bytes, float | None]]] = {}

    async def get(self, namespace: str, key: str) -> bytes | None:
        found = self._values.get(namespace, {}).get(key)
        if found is None:
            return None
        value, expires = found
        if expires is not None and expires <= self._clock():
            await self.delete(namespace, key)
            return None
        return value

    async def put(self, namespace: str, key: str, value: bytes, *,
                  ttl: float | None = None) -> None:
        check_name("namespace", namespace)
        check_name("key", key)
        expires = None if ttl is None else self._clock() + ttl
        self._values.setdefault(namespace, {})[key] = (bytes(value), expires)

    async def delete(self, namespace: str, key: str) -> bool:
        values = self._values.get(namespace)
        if values is None or key not in values:
            return False
        del values[key]
        if not values:
            del self._values[namespace]
        return True

    async def keys(self, namespace: str, prefix: str = "", limit: int = 1000) -> list[str]:
        now = self._clock()
        values = self._values.get(namespace, {})
        names = sorted(k for k, (_, expires) in values.items()
                       if k.startswith(prefix) and (expires is None or expires > now))
        return names[:limit]

    def __len__(self) -> int:
        return sum(len(values) for values in self._values.values())


class MemoryQueues:
    """``max_items``: most items one queue holds (beyond, ``push`` raises Overloaded)."""

    def __init__(self, *, max_items: int = 10_000, retry_after: int = 5,
                 clock: Callable[[], float] = time.time) -> None:
        self._max_items = max_items
        self._retry_after = retry_after
        self._clock = clock
        self._ids = itertools.count(1)
        self._queues: dict[str, deque[QueueItem]] = {}

    async def push(self, queue: str, body: bytes) -> int:
        check_name("queue name", queue)
        items = self._queues.setdefault(queue, deque())
        if len(items) >= self._max_items:
            raise Overloaded(f"the queue {queue!r} holds {len(items)} items already",
                             code="queue_full", retry_after=self._retry_after)
        item = QueueItem(next(self._ids), bytes(body), self._clock())
        items.append(item)
        return item.id

    async def peek(self, queue: str, limit: int = 1) -> list[QueueItem]:
        return list(itertools.islice(self._queues.get(queue, ()), max(0, limit)))

    async def ack(self, queue: str, item_id: int) -> bool:
        items = self._queues.get(queue)
        if not items:
            return False
        if items[0].id == item_id:  # the usual case: the oldest was handled
            items.popleft()
        else:
            at = next((n for n, item in enumerate(items) if item.id == item_id), None)
            if at is None:
                return False
            del items[at]
        if not items:
            del self._queues[queue]
        return True

    async def length(self, queue: str) -> int:
        return len(self._queues.get(queue, ()))

    async def oldest_age(self, queue: str) -> float | None:
        items = self._queues.get(queue)
        return max(0.0, self._clock() - items[0].pushed) if items else None

    def __len__(self) -> int:
        return sum(len(items) for items in self._queues.values())


def memory_lasting(*, max_queue_items: int = 10_000, retry_after: int = 5) -> Lasting:
    return Lasting(MemoryKeyValue(), MemoryQueues(max_items=max_queue_items,
                                                  retry_after=retry_after), durable=False)
