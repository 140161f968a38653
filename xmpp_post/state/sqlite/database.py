"""``SqliteState``: one state directory open (``state_files``), its database at the latest
schema (``schema``), the translation of SQLite's failures, and the upkeep.

Where the work runs, so the event loop never waits long on the disk:

* The requests' statements (an answer's lookup and its write, a value, a queue item)
  run on the event loop's thread, each a row or a few: a read from memory, or a commit
  to the end of the WAL without fsync (``synchronous=NORMAL``), which survives the
  process being killed (the kernel holds the write); a power cut can lose the last
  commits, never the database. An answer's write waits for the end of the loop's turn
  (``write_soon``) and is committed with the others queued in that turn, in one
  transaction. ``bench.state_store`` measures them (about 50 µs for a commit alone,
  the caches cold after a request's handling; a few µs each when eight share one), and
  the loop's turns around them. A writer thread was measured too: handing each write
  to it and back cost more than the write, for waits on the disk that were rare (about
  one write in a thousand on a busy shared disk, for 1 to 12 ms).
* What takes long (checkpoints, with their fsync; row counts) runs in the upkeep's
  thread, and expired entries are removed in batches (``upkeep``).

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
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from xmpp_post.errors import ConfigError, StateUnavailable
from xmpp_post.state import StateKey
from xmpp_post.state.sqlite import schema, state_files
from xmpp_post.state.sqlite.connection import KINDS, connect, reason
from xmpp_post.state.sqlite.upkeep import Upkeep

log = logging.getLogger(__name__)

T = TypeVar("T")
PROBE_BYTES = 64 * 1024  # written by probe(): room for a dozen requests' answers
def _alone(job: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    """``job`` in a transaction of its own: undone whole if it fails."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = job(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


class SqliteState:
    """A state directory in use. Construction takes the lock and migrates (raising
    ``ConfigError`` naming ``state_dir``); ``start`` begins the upkeep; ``close`` ends it
    and releases the directory (idempotent). ``key``: the digests' key (default: the
    directory's ``state.key``)."""

    def __init__(self, directory: Path, *, key: bytes | None = None, retry_after: int = 5,
                 upkeep_every: float = 30.0, checkpoint_every: int = 1000) -> None:
        self.directory = state_files.prepare_directory(directory)
        self.retry_after = retry_after
        self.upkeep_every = upkeep_every
        self.checkpoint_every = checkpoint_every
        self._lock = state_files.DirectoryLock(self.directory)
        self._lock.acquire()
        self.db: sqlite3.Connection | None = None  # the event loop's own
        self.path = self.directory / state_files.DATABASE
        try:
            self.key = StateKey(key if key is not None
                                else state_files.state_key(self.directory))
            self.path = state_files.database_file(self.directory)
            version = schema.stored_version(self.path)
            self.db = connect(self.path)
            self.migrated = schema.migrate(self.db, self.path, version)
        except sqlite3.Error as exc:
            self._release()
            raise ConfigError("state_dir", f"{self.path}: cannot be opened as a state "
                              f"database ({exc})") from exc
        except BaseException:
            self._release()
            raise
        if version == 0:
            log.info("state database %s created (schema version %d)", self.path,
                     schema.LATEST)
        elif self.migrated:
            log.warning("state database %s migrated from schema version %d to %d",
                        self.path, version, schema.LATEST)
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
        self._queued: list[tuple[Callable[[sqlite3.Connection], Any],
                                 asyncio.Future[Any]]] = []
        self.upkeep = Upkeep(self, upkeep_every)
        self._closed = False

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
            self.failed(exc)
            raise self.unavailable(reason(exc)) from exc

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
            self.failed(exc)
            raise self.unavailable(reason(exc)) from exc
        if proof:
            self._worked(1)
        return result

    def _worked(self, commits: int) -> None:
        """Writes worked: the store works (if it failed before); a checkpoint is due
        once enough commits have gathered in the WAL."""
        if self.failure is not None:
            log.warning("state database %s works again", self.path)
            self.failure = None
        self._writes += commits
        if self._writes >= self.checkpoint_every:
            self._writes = 0
            self.upkeep.due()

    async def write_soon(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """``job``, committed at the end of this turn of the event loop together with
        the other writes queued in it, in one transaction: concurrent requests share
        the fixed cost of a commit. As ``write`` otherwise."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queued.append((job, future))
        if len(self._queued) == 1:
            loop.call_soon(self._commit_queued)
        return await future

    def _commit_queued(self) -> None:
        queued, self._queued = self._queued, []
        db = self.db
        if len(queued) > 1 and db is not None:
            try:
                db.execute("BEGIN IMMEDIATE")
                results = [job(db) for job, _ in queued]
                db.execute("COMMIT")
            except Exception:  # each again alone: which failed, and why
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
            else:
                self._worked(1)
                for (_, future), result in zip(queued, results, strict=True):
                    if not future.done():  # else its awaiter was cancelled
                        future.set_result(result)
                return
        for job, future in queued:
            try:
                result = self.write(job if len(queued) == 1 else partial(_alone, job))
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)

    def unavailable(self, why: str) -> StateUnavailable:
        return StateUnavailable(f"the state store is unavailable: {why}",
                                retry_after=self.retry_after)

    def failed(self, exc: sqlite3.Error) -> None:
        """Note a failure (logged when it is new); claims pause (``check``)."""
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
            raise self.unavailable(self.failure)
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
        """Begin the upkeep (expiry, checkpoints, row counts)."""
        await self.upkeep.start()

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
        if self._queued:
            self._commit_queued()
        await self.upkeep.close()
        db, self.db = self.db, None
        if db is not None:  # the last connection: it checkpoints (shutting down, so here)
            with contextlib.suppress(sqlite3.Error):
                db.close()
        self._lock.release()

    def _release(self) -> None:
        """Undo a construction that failed."""
        db, self.db = self.db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()
        self._lock.release()
