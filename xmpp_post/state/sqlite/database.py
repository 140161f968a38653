"""``SqliteState``: one state directory open (``files``), its database at the latest
schema (``schema``), the translation of SQLite's failures, and the upkeep.

Where the work runs, so the event loop never waits long on the disk:

* The requests' statements (a claim's lookup, an answer, a value, a queue item) run on
  the event loop's thread, each one row: a few tens of µs, the write a commit to the
  end of the WAL without fsync (``synchronous=NORMAL``), which survives the process being
  killed (the kernel holds the write); a power cut can lose the last commits, never the
  database. ``bench.state_store`` measures them, and what one writer thread would cost
  instead: the hand-over to it and back doubled the cost, for waits on the disk that
  are rare (about one write in a thousand on a busy shared disk, for 1 to 12 ms).
* What takes long runs in one thread of its own, on a connection of its own:
  checkpoints (copying the WAL into the database, with an fsync; ``wal_autocheckpoint``
  is off on the loop's connection) after ``checkpoint_every`` commits and at every
  upkeep, and the row counts for ``/metrics``. SQLite releases the GIL while it reads,
  writes and syncs, and a passive checkpoint never blocks the writer.
* An owned background task (``upkeep``) runs those, and removes expired entries a batch
  at a time (yielding to the loop between batches), every ``upkeep_every`` seconds.

Failures: any SQLite error (the disk full, the file read-only, an I/O error) becomes
``StateUnavailable`` (503 ``state_unavailable`` with Retry-After) for the request that
needed the store. After a failed write, new claims are refused for ``retry_after``
seconds (``check``), then a probe write decides; nothing else is sticky, so the store
recovers by itself once the disk has room or the file is writable again. ``problem()``
(for ``/readyz``) says what failed, probing with a write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from xmpp_post.errors import ConfigError, StateUnavailable
from xmpp_post.state import StateKey
from xmpp_post.state.sqlite import files, schema
from xmpp_post.tasks import TaskGroup

log = logging.getLogger(__name__)

T = TypeVar("T")
PROBE_BYTES = 64 * 1024  # written by probe(): room for a dozen requests' answers
PURGE_BATCH = 500  # rows one purge statement removes: about a millisecond
WAL_LIMIT = 64 * 1024 * 1024  # bytes the WAL file is cut back to once checkpointed
_REASONS = {  # SQLite's primary error codes, as an operator would say them
    "SQLITE_FULL": "the disk is full",
    "SQLITE_READONLY": "the database is read-only",
    "SQLITE_IOERR": "an I/O error",
    "SQLITE_BUSY": "the database is busy",
    "SQLITE_LOCKED": "the database is busy",
    "SQLITE_CORRUPT": "the database is corrupt",
    "SQLITE_CANTOPEN": "a file of the database cannot be opened",
    "SQLITE_NOTADB": "the file is not a database",
}
# Tables whose rows expire (``expires``), with the columns that name a row.
EXPIRING = {"answers": "id", "kv": "namespace, key"}
KINDS = {"answers": "idempotency", "kv": "kv", "queue": "queue"}


def reason(exc: BaseException) -> str:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return _REASONS.get("_".join(name.split("_")[:2]), name or type(exc).__name__)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, cached_statements=64)
    db.execute("PRAGMA busy_timeout = 100")  # only an operator's own writes can hold it
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA wal_autocheckpoint = 0")  # the upkeep thread checkpoints
    db.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
    return db


class SqliteState:
    """A state directory in use. Construction takes the lock and migrates (raising
    ``ConfigError`` naming ``state_dir``); ``start`` begins the upkeep; ``close`` ends it
    and releases the directory (idempotent). ``key``: the digests' key (default: the
    directory's ``state.key``)."""

    def __init__(self, directory: Path, *, key: bytes | None = None, retry_after: int = 5,
                 upkeep_every: float = 30.0, checkpoint_every: int = 1000) -> None:
        self.directory = files.prepare_directory(directory)
        self.retry_after = retry_after
        self.upkeep_every = upkeep_every
        self.checkpoint_every = checkpoint_every
        self._lock = files.DirectoryLock(self.directory)
        self._lock.acquire()
        self.db: sqlite3.Connection | None = None  # the event loop's own
        self.path = self.directory / files.DATABASE
        try:
            self.key = StateKey(key if key is not None else files.state_key(self.directory))
            self.path = files.database_file(self.directory)
            version = schema.stored_version(self.path)
            self.db = _connect(self.path)
            self.migrated = schema.migrate(self.db, self.path, version)
        except sqlite3.Error as exc:
            self._release()
            raise ConfigError("state_dir", f"{self.path}: cannot be opened as a state "
                              f"database ({exc})") from exc
        except BaseException:
            self._release()
            raise
        if self.migrated:
            log.warning("state database %s migrated from schema version %d to %d",
                        self.path, version, schema.LATEST)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="xmpp-post-state")
        self._local = threading.local()  # the upkeep thread's connection
        self.rows: dict[str, int] = dict.fromkeys(KINDS.values(), 0)
        for table, kind in KINDS.items():
            self.rows[kind] = int(self.db.execute(
                f"SELECT count(*) FROM {table}").fetchone()[0])
        # The answers' keys and expiry times, oldest first (``stores``).
        self.answers_kept: dict[bytes, float] = {
            bytes(k): float(expires) for k, expires in self.db.execute(
                "SELECT k, expires FROM answers WHERE expires > ? ORDER BY id",
                (time.time(),))}
        self.failure: str | None = None
        self._failed_at = 0.0
        self._writes = 0
        self._due = asyncio.Event()
        self._tasks = TaskGroup("state")
        self._started = self._closed = False

    # the requests' statements ------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, for a read on the event loop's thread; an SQLite error
        becomes ``StateUnavailable``."""
        if self.db is None:
            raise StateUnavailable("the state store is closed", retry_after=self.retry_after)
        try:
            yield self.db
        except sqlite3.Error as exc:
            self._failed(exc)
            raise self._unavailable(reason(exc)) from exc

    def write(self, job: Callable[[sqlite3.Connection], T], *, proof: bool = True) -> T:
        """``job(connection)``, committed, on the event loop's thread (one short
        statement or a few: a single statement commits as it runs; several in one
        transaction); an SQLite error becomes ``StateUnavailable``. ``proof``: that it
        worked shows the store can be written again (not so for a job that may write
        nothing)."""
        db = self.db
        if db is None:
            raise StateUnavailable("the state store is closed", retry_after=self.retry_after)
        try:
            result = job(db)
        except sqlite3.Error as exc:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")  # a job that failed half-way
            self._failed(exc)
            raise self._unavailable(reason(exc)) from exc
        if not proof:
            return result
        if self.failure is not None:
            log.warning("state database %s works again", self.path)
            self.failure = None
        self._writes += 1
        if self._writes >= self.checkpoint_every:
            self._writes = 0
            self._due.set()
        return result

    async def in_thread(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """``job`` on the upkeep thread's own connection (for what takes long)."""
        def run() -> T:
            db = getattr(self._local, "db", None)
            if db is None:
                db = self._local.db = _connect(self.path)
            return job(db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, run)
        except sqlite3.Error as exc:
            self._failed(exc)
            raise self._unavailable(reason(exc)) from exc

    def _unavailable(self, why: str) -> StateUnavailable:
        return StateUnavailable(f"the state store is unavailable: {why}",
                                retry_after=self.retry_after)

    def _failed(self, exc: sqlite3.Error) -> None:
        why = reason(exc)
        if why == "the database is corrupt":
            log.error("state database %s: %s", self.path, exc)
        elif self.failure != why:
            log.warning("state database %s unavailable: %s (%s)", self.path, why, exc)
        self.failure = why
        self._failed_at = time.monotonic()

    def check(self) -> None:
        """Before a new write that matters (a claim whose answer must be kept): after a
        failed write, ``StateUnavailable`` for ``retry_after`` seconds, then a probe.
        A full disk can take some writes and not others (space freed in the WAL is
        reused): the pause bounds the answers lost to one per pause."""
        if self.failure is None:
            return
        if time.monotonic() - self._failed_at < self.retry_after:
            raise self._unavailable(self.failure)
        self.probe()

    def probe(self) -> None:
        """A write several times the size of a request's; ``StateUnavailable`` if it
        fails. Larger, because a full disk can still take a write that fits in the
        space an earlier, failed one left allocated at the end of the WAL."""
        self.write(lambda db: db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', zeroblob(?))",
            (PROBE_BYTES,)))

    async def problem(self) -> str | None:
        """None when a probe write works, else what fails (for ``/readyz``)."""
        try:
            if self.failure is not None:
                self.check()
            else:
                self.probe()
        except StateUnavailable as exc:
            return f"{exc.message} ({self.path})"
        return None

    # upkeep ------------------------------------------------------------------------------

    async def start(self) -> None:
        if not self._started:
            self._started = True
            self._tasks.spawn(self._upkeep(), "state upkeep")

    async def _upkeep(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.upkeep_every):
                    await self._due.wait()
            self._due.clear()
            with contextlib.suppress(StateUnavailable):  # logged where it failed
                await self.purge()
                await self.checkpoint()
                await self.count_rows()

    async def purge(self, now: float | None = None) -> int:
        """Remove expired entries, a batch at a time, yielding to the loop between."""
        now = time.time() if now is None else now
        removed = 0
        for table, row in EXPIRING.items():
            statement = (f"DELETE FROM {table} WHERE ({row}) IN (SELECT {row} FROM {table} "
                         f"WHERE expires <= ? LIMIT {PURGE_BATCH})")

            def batch(db: sqlite3.Connection, statement: str = statement) -> int:
                return int(db.execute(statement, (now,)).rowcount)

            while True:
                gone = self.write(batch, proof=False)
                removed += gone
                if gone < PURGE_BATCH:
                    break
                await asyncio.sleep(0)
        kept = self.answers_kept
        while kept and next(iter(kept.values())) <= now:
            del kept[next(iter(kept))]
        return removed

    async def checkpoint(self) -> tuple[int, int, int]:
        """Copy the WAL into the database (a passive checkpoint, in the upkeep thread):
        (busy, pages in the WAL, pages copied)."""
        def run(db: sqlite3.Connection) -> tuple[int, int, int]:
            row = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(row[0]), int(row[1]), int(row[2])

        return await self.in_thread(run)

    async def count_rows(self) -> None:
        """The rows of each kind, counted in the upkeep thread, for ``/metrics``."""
        def run(db: sqlite3.Connection) -> dict[str, int]:
            return {kind: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                    for table, kind in KINDS.items()}

        self.rows.update(await self.in_thread(run))

    def size(self) -> int:
        """Bytes on disk: the database and its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += Path(f"{self.path}{suffix}").stat().st_size
        return total

    async def close(self) -> None:
        """End the upkeep, close the database, release the directory."""
        if self._closed:
            return
        self._closed = True
        await self._tasks.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close_thread_connection)
        self._thread.shutdown()
        db, self.db = self.db, None
        if db is not None:  # the last connection: it checkpoints (shutting down, so here)
            with contextlib.suppress(sqlite3.Error):
                db.close()
        self._lock.release()

    def _close_thread_connection(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _release(self) -> None:
        """Undo a construction that failed."""
        db, self.db = self.db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()
        self._lock.release()
