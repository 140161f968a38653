"""Background tasks that are owned: kept until done, cancelled on shutdown, and whose
failure is logged where it happened instead of vanishing with the task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskGroup:
    """A set of background tasks; ``spawn`` one, ``close`` cancels and awaits them all."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(done, what))
        return task

    def _finished(self, task: asyncio.Task[Any], what: str) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("%s: background task %r failed: %r", self.name, what, error,
                      exc_info=error)

    async def wait(self) -> None:
        """Wait for every task now running to finish (failures are already logged)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel every task and wait for them; idempotent."""
        for task in list(self._tasks):
            task.cancel()
        await self.wait()
