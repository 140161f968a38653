"""``SqliteState``: one state directory open (``files``), its database at the latest
schema (``schema``), the translation of SQLite's failures, and the upkeep.

Where the work runs, so the event loop never waits on the disk:

* The requests' statements run on the event loop's thread, each one short (one row read
  or written: a few µs; ``bench.state_store`` measures them). The database is in WAL
  mode with ``synchronous=NORMAL``: a commit is a write to the end of the WAL, no fsync,
  so it survives the process being killed (the kernel holds the write); a power cut can
  lose the last commits, never the database.
* Checkpoints (copying the WAL into the database, with an fsync) run in one thread of
  their own, on a connection of their own, never on the requests' connection
  (``wal_autocheckpoint`` is off there): after ``checkpoint_every`` commits and at every
  upkeep. SQLite releases the GIL while it writes and syncs.
* An owned background task (``upkeep``) removes expired entries in small batches,
  checkpoints, and counts the rows for ``/metrics``, every ``upkeep_every`` seconds.

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
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from xmpp_post.errors import ConfigError, StateUnavailable
from xmpp_post.state import StateKey
from xmpp_post.state.sqlite import files, schema
from xmpp_post.tasks import TaskGroup

log = logging.getLogger(__name__)

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


def _connect(path: Path, *, thread_safe: bool = False) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=not thread_safe,
                         cached_statements=64)
    db.execute("PRAGMA busy_timeout = 100")  # only an operator's own writes can hold it
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
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
        self.db: sqlite3.Connection | None = None
        try:
            self.key = StateKey(key if key is not None else files.state_key(self.directory))
            self.path = files.database_file(self.directory)
            version = schema.stored_version(self.path)
            self.db = _connect(self.path)
            self.db.execute("PRAGMA wal_autocheckpoint = 0")  # the upkeep thread's work
            self.db.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
            self.migrated = schema.migrate(self.db, self.path, version)
        except sqlite3.Error as exc:
            self._release()
            raise ConfigError("state_dir", f"{self.path}: cannot be opened as a "
                                    f"state database ({exc})") from exc
        except BaseException:
            self._release()
            raise
        if self.migrated:
            log.warning("state database %s migrated from schema version %d to %d",
                        self.path, version, schema.LATEST)
        self.rows: dict[str, int] = dict.fromkeys(KINDS.values(), 0)
        self.failure: str | None = None
        self._failed_at = 0.0
        self._writes = 0
        self._due = asyncio.Event()
        self._thread: ThreadPoolExecutor | None = None
        self._tasks = TaskGroup("state")
        self._closed = False
        self.count_rows()

    # the requests' statements ------------------------------------------------------------

    @contextlib.contextmanager
    def use(self) -> Iterator[sqlite3.Connection]:
        """The connection, for statements on the event loop's thread; an SQLite error
        becomes ``StateUnavailable``."""
        if self.db is None:
            raise StateUnavailable("the state store is closed", retry_after=self.retry_after)
        try:
            yield self.db
        except sqlite3.Error as exc:
            if self.db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            self._failed(exc)
            raise StateUnavailable(f"the state store is unavailable: {reason(exc)}",
                                   retry_after=self.retry_after) from exc

    def wrote(self) -> None:
        """After a write that worked: the store works (if it failed before); ask for a
        checkpoint once enough commits have gathered in the WAL."""
        if self.failure is not None:
            log.warning("state database %s works again", self.path)
            self.failure = None
        self._writes += 1
        if self._writes >= self.checkpoint_every:
            self._writes = 0
            self._due.set()

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
            raise StateUnavailable(f"the state store is unavailable: {self.failure}",
                                   retry_after=self.retry_after)
        self.probe()

    def probe(self) -> None:
        """A write several times the size of a request's, ``StateUnavailable`` if it
        fails. Larger, because a full disk can still take a write that fits in the
        space an earlier, failed one left allocated at the end of the WAL."""
        with self.use() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', zeroblob(?))",
                       (PROBE_BYTES,))
        self.wrote()

    def problem(self) -> str | None:
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
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="xmpp-post-state")
            self._tasks.spawn(self._upkeep(), "state upkeep")

    async def _upkeep(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), self.upkeep_every)
            self._due.clear()
            await self.purge()
            await self.checkpoint()
            with contextlib.suppress(StateUnavailable):
                self.count_rows()

    async def purge(self, now: float | None = None) -> int:
        """Remove expired entries, a batch at a time, yielding to the loop in between."""
        now = time.time() if now is None else now
        removed = 0
        for table, row in EXPIRING.items():
            while True:
                try:
                    with self.use() as db:
                        gone = db.execute(
                            f"DELETE FROM {table} WHERE ({row}) IN (SELECT {row} "
                            f"FROM {table} WHERE expires <= ? LIMIT {PURGE_BATCH})",
                            (now,)).rowcount
                except StateUnavailable:
                    return removed
                removed += gone
                if gone:
                    self.wrote()
                if gone < PURGE_BATCH:
                    break
                await asyncio.sleep(0)
        return removed

    async def checkpoint(self) -> None:
        """Copy the WAL into the database, in the upkeep thread."""
        if self._thread is None:
            return
        loop = asyncio.get_running_loop()
        try:
            busy, logged, copied = await loop.run_in_executor(self._thread, self._checkpoint)
        except sqlite3.Error as exc:
            self._failed(exc)
            return
        if busy:
            log.debug("checkpoint: %d of %d WAL pages copied", copied, logged)

    _checkpointer: sqlite3.Connection | None = None

    def _checkpoint(self) -> tuple[int, int, int]:
        """In the upkeep thread: a passive checkpoint, which never blocks the writer."""
        if self._checkpointer is None:
            self._checkpointer = _connect(self.path, thread_safe=True)
        row = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def count_rows(self) -> None:
        with self.use() as db:
            for table, kind in KINDS.items():
                self.rows[kind] = int(db.execute(
                    f"SELECT count(*) FROM {table}").fetchone()[0])

    def size(self) -> int:
        """Bytes on disk: the database and its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += Path(f"{self.path}{suffix}").stat().st_size
        return total

    async def close(self) -> None:
        """End the upkeep, checkpoint, close the database and release the directory."""
        if self._closed:
            return
        self._closed = True
        await self._tasks.close()
        thread, self._thread = self._thread, None
        if thread is not None:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(sqlite3.Error):
                await loop.run_in_executor(thread, self._close_checkpointer)
            thread.shutdown(wait=True)
        self._release()

    def _close_checkpointer(self) -> None:
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.close()

    def _release(self) -> None:
        db, self.db = self.db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()  # the last connection checkpoints and removes the WAL
        self._lock.release()
