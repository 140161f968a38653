"""The state database's background work (``Upkeep``), owned by its ``SqliteState``:

* an owned task (STYLE rule 6: kept, cancelled and awaited by ``close``, its failure
  logged) that wakes every ``every`` seconds, or when the state asks for a checkpoint
  (``due``), and then removes expired entries, checkpoints and counts the rows;
* one thread of its own, with a connection of its own (``in_thread``), for what takes
  long: the checkpoint (it copies the WAL into the database and syncs it; a passive
  one never blocks the loop's writes) and the row counts. SQLite releases the GIL
  meanwhile.

Expired entries are removed on the loop's connection (a write from a second connection
would have the loop's writes wait for it), a batch at a time, yielding to the loop
between batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from xmpp_post.errors import StateUnavailable
from xmpp_post.state.sqlite.connection import KINDS, connect, reason
from xmpp_post.tasks import TaskGroup

if TYPE_CHECKING:
    from xmpp_post.state.sqlite.database import SqliteState

T = TypeVar("T")
PURGE_BATCH = 500  # rows one purge statement removes: about a millisecond
# Tables whose rows expire (``expires``), with the columns that name a row.
EXPIRING = {"answers": "id", "kv": "namespace, key"}


class Upkeep:
    def __init__(self, state: SqliteState, every: float) -> None:
        self._state = state
        self.every = every
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="xmpp-post-state")
        self._local = threading.local()  # the thread's connection
        self._due = asyncio.Event()
        self._tasks = TaskGroup("state")
        self._started = False

    def due(self) -> None:
        """Run now (enough commits have gathered in the WAL)."""
        self._due.set()

    async def start(self) -> None:
        if not self._started:
            self._started = True
            self._tasks.spawn(self._run(), "state upkeep")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.every):
                    await self._due.wait()
            self._due.clear()
            with contextlib.suppress(StateUnavailable):  # logged where it failed
                await self.purge()
                await self.checkpoint()
                await self.count_rows()

    async def in_thread(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """``job`` on the thread's own connection; an SQLite error becomes
        ``StateUnavailable``."""
        def run() -> T:
            db = getattr(self._local, "db", None)
            if db is None:
                db = self._local.db = connect(self._state.path)
            return job(db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, run)
        except sqlite3.Error as exc:
            self._state.failed(exc)
            raise self._state.unavailable(reason(exc)) from exc

    async def purge(self, now: float | None = None) -> int:
        """Remove expired entries; how many."""
        now = time.time() if now is None else now
        removed = 0
        for table, row in EXPIRING.items():
            statement = (f"DELETE FROM {table} WHERE ({row}) IN (SELECT {row} FROM {table} "
                         f"WHERE expires <= ? LIMIT {PURGE_BATCH})")

            def batch(db: sqlite3.Connection, statement: str = statement) -> int:
                return int(db.execute(statement, (now,)).rowcount)

            while True:
                gone = self._state.write(batch, proof=False)
                removed += gone
                if gone < PURGE_BATCH:
                    break
                await asyncio.sleep(0)
        kept = self._state.answers_kept
        while kept and next(iter(kept.values())) <= now:
            del kept[next(iter(kept))]
        return removed

    async def checkpoint(self) -> tuple[int, int, int]:
        """A passive checkpoint: (busy, pages in the WAL, pages copied)."""
        def run(db: sqlite3.Connection) -> tuple[int, int, int]:
            row = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(row[0]), int(row[1]), int(row[2])

        return await self.in_thread(run)

    async def count_rows(self) -> None:
        """The rows of each kind, for ``/metrics`` (``SqliteState.rows``)."""
        def run(db: sqlite3.Connection) -> dict[str, int]:
            return {kind: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                    for table, kind in KINDS.items()}

        self._state.rows.update(await self.in_thread(run))

    async def close(self) -> None:
        """Cancel the task, close the thread's connection, end the thread."""
        await self._tasks.close()
        await asyncio.get_running_loop().run_in_executor(self._thread, self._disconnect)
        self._thread.shutdown()

    def _disconnect(self) -> None:
        db, self._local.db = getattr(self._local, "db", None), None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()
