"""One deadline per request, without a timer per request.

``Deadlines(seconds).within()`` bounds a block like ``asyncio.timeout(seconds)``: when
the time is up, the task is cancelled and the block raises ``TimeoutError`` (a
cancellation from elsewhere stays a cancellation). Every block of one ``Deadlines`` has
the same duration, so their deadlines come in the order the blocks began: the open
blocks are kept in that order, and one timer, set for the oldest, serves them all. A
block costs a dictionary entry instead of a timer of the event loop (a few µs each on a
busy gateway).
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Deadlines:
    """Deadlines of ``seconds`` for blocks of one event loop; see the module docstring."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._open: dict[int, _Within] = {}  # in the order the blocks began
        self._timer: asyncio.TimerHandle | None = None
        self._serial = 0

    def within(self) -> _Within:
        """An ``async with`` block bounded by ``seconds`` from its start."""
        return _Within(self)

    def _enter(self, block: _Within, loop: asyncio.AbstractEventLoop) -> int:
        self._serial += 1
        self._open[self._serial] = block
        if self._timer is None:
            self._timer = loop.call_at(block.deadline, self._expire, loop)
        return self._serial

    def _exit(self, key: int) -> None:
        self._open.pop(key, None)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        while self._open:
            key, block = next(iter(self._open.items()))
            if block.deadline > now:
                self._timer = loop.call_at(block.deadline, self._expire, loop)
                return
            del self._open[key]
            block.expire()


class _Within:
    __slots__ = ("_cancelling", "_key", "_owner", "_task", "deadline", "expired")

    def __init__(self, owner: Deadlines) -> None:
        self._owner = owner
        self.expired = False

    async def __aenter__(self) -> _Within:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a task")
        loop = task.get_loop()
        self._task = task
        self._cancelling = task.cancelling()
        self.deadline = loop.time() + self._owner.seconds
        self._key = self._owner._enter(self, loop)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._owner._exit(self._key)
        if (self.expired and exc_type is asyncio.CancelledError
                and self._task.uncancel() <= self._cancelling):
            raise TimeoutError from exc

    def expire(self) -> None:
        if not self._task.done():
            self.expired = True
            self._task.cancel()
