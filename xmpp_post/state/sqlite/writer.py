"""The one thread that writes to the state database, so the event loop never waits on
the disk: a commit is a write to the WAL, and a write to a file can block for
milliseconds while the filesystem commits its journal (``bench.state_store`` measured a
99th percentile of 4 ms for a commit made on the loop, on a busy ext4 disk).

``Writer.run(job)`` queues ``job(connection)`` and returns its result once it is
committed. Jobs run in the order they were queued, on a connection of the thread's own.
Jobs that queued up while the thread was busy are committed together, in one
transaction (each in a savepoint of its own, so a job that fails alone is undone alone):
under load a commit, and a wake-up of the loop, serve many requests. A ``solo`` job runs
outside any transaction (a checkpoint must). SQLite releases the GIL while it reads,
writes and syncs, so the loop runs meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]
MAX_BATCH = 256  # jobs committed together at most


@dataclass
class _Queued:
    job: Job
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    solo: bool
    result: Any = None
    error: BaseException | None = None


def _settle(done: list[_Queued]) -> None:
    """On the loop: hand each job's outcome to whoever awaits it."""
    for item in done:
        if item.future.done():  # its awaiter was cancelled
            continue
        if item.error is not None:
            item.future.set_exception(item.error)
        else:
            item.future.set_result(item.result)


class Writer:
    """The writing thread; ``connect`` makes its connection (in the thread)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._jobs: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="xmpp-post-state",
                                        daemon=True)
        self._thread.start()
        self._closed = False

    async def run(self, job: Callable[[sqlite3.Connection], T], *, solo: bool = False) -> T:
        """``job``'s result, once committed; its exception (an ``sqlite3.Error`` for the
        disk full or the file read-only) if it or the commit failed."""
        if self._closed:
            raise sqlite3.OperationalError("the state database is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Queued(job, future, loop, solo))
        return await future

    async def close(self) -> None:
        """Finish the queued jobs, then end the thread and close its connection."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)

    # in the thread -----------------------------------------------------------------------

    def _serve(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            db = self._connect()
        except sqlite3.Error as exc:
            log.error("the state database's writer cannot connect: %s", exc)
        while True:
            first = self._jobs.get()
            if first is None:
                break
            batch = [first]
            ending = False
            while not first.solo and len(batch) < MAX_BATCH:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    ending = True
                    break
                if more.solo:  # keep the order: it runs alone, after this batch
                    self._commit(db, batch)
                    batch = [more]
                    break
                batch.append(more)
            self._commit(db, batch)
            if ending:
                break
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _commit(self, db: sqlite3.Connection | None, batch: list[_Queued]) -> None:
        if db is None:
            for item in batch:
                item.error = sqlite3.OperationalError("the state database cannot be opened")
        elif len(batch) == 1:  # alone: the job's own statements commit as they run
            _attempt(batch[0], db)
        else:
            self._together(db, batch)
        loops: dict[asyncio.AbstractEventLoop, list[_Queued]] = {}
        for item in batch:
            loops.setdefault(item.loop, []).append(item)
        for loop, done in loops.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(_settle, done)

    def _together(self, db: sqlite3.Connection, batch: list[_Queued]) -> None:
        try:
            db.execute("BEGIN IMMEDIATE")
            for item in batch:
                db.execute("SAVEPOINT job")
                if _attempt(item, db):
                    db.execute("RELEASE job")
                else:
                    db.execute("ROLLBACK TO job")
                    db.execute("RELEASE job")
            db.execute("COMMIT")
        except sqlite3.Error as exc:  # the commit (or the transaction) failed: all did
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            for item in batch:
                if item.error is None:
                    item.error, item.result = exc, None


def _attempt(item: _Queued, db: sqlite3.Connection) -> bool:
    try:
        item.result = item.job(db)
    except Exception as exc:  # handed to the awaiter, which translates or raises it
        item.error = exc
        return False
    return True
