"""The state protocols on a ``SqliteState``: ``SqliteIdempotencyStore`` (``state``), and
``SqliteKeyValue`` and ``SqliteQueues`` (``state.lasting``), with the semantics of the
memory ones (``state.memory``, ``state.memory_lasting``) and the same contract tests.

Idempotency: only finished answers are written, under a ``StateKey`` digest of (sender
scope, ``Idempotency-Key``); the sender's JID, the key and the password never are. The
digests of the answers kept, and when each expires, are also in memory
(``SqliteState.answers_kept``, read at start: this process is the database's only
writer), so a new key, the usual case, is claimed without reading the database. A
request in progress is this process's own business (one gateway per directory): its
claim and the duplicates waiting for it are kept in memory, as in ``state.memory``. The
answer is committed before the response leaves, so every answer a client has seen is
replayed after a crash or restart, within the window. When that write fails (the disk
full, the file read-only), the answer stands but is not kept (logged), and new claims
are refused (503) for ``retry_after`` seconds, then until a write works again
(``SqliteState.check``); stored answers are still replayed meanwhile. At most
``max_entries`` answers are kept (the oldest go first, a batch at a time); expired ones
are purged by the upkeep and never replayed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from xmpp_post.errors import Overloaded, StateUnavailable, Unprocessable
from xmpp_post.state import StoredAnswer, storable
from xmpp_post.state.lasting import Lasting, QueueItem, check_name
from xmpp_post.state.sqlite.database import SqliteState
from xmpp_post.state.sqlite.upkeep import PURGE_BATCH

log = logging.getLogger(__name__)

_TOP = chr(0x10FFFF)  # sorts after every character: the end of a prefix's key range


@dataclass
class _Pending:
    fingerprint: bytes
    done: asyncio.Future[None]


class SqliteIdempotencyStore:
    """``state.IdempotencyStore`` in the state database. ``claim`` then one ``finish``."""

    def __init__(self, state: SqliteState, *, window: float, max_entries: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._window = window
        self._max_entries = max_entries
        self._slack = min(PURGE_BATCH, max(16, max_entries // 20))
        self._clock = clock
        self._pending: dict[bytes, _Pending] = {}

    def _row_key(self, key: tuple[str, str]) -> bytes:
        return self._state.key.digest("sqlite idempotency", *key)

    async def claim(self, key: tuple[str, str], fingerprint: bytes) -> StoredAnswer | None:
        """As ``state.IdempotencyStore``. While the last write failed, a stored answer
        is still replayed, but a new claim waits for a write that works (else 503,
        before anything is sent)."""
        k = self._row_key(key)
        while True:
            pending = self._pending.get(k)
            if pending is not None:
                _same(pending.fingerprint, fingerprint)
                await asyncio.shield(pending.done)
                continue
            now = self._clock()
            row = None
            if self._state.answers_kept.get(k, now) > now:  # else not in the database
                with self._state.reading() as db:
                    row = db.execute("SELECT fingerprint, status, body, content_type, "
                                     "headers FROM answers WHERE k = ? AND expires > ?",
                                     (k, now)).fetchone()
            if row is not None:
                _same(row[0], fingerprint)
                headers = tuple((str(n), str(v)) for n, v in json.loads(row[4]))
                return StoredAnswer(int(row[1]), bytes(row[2]), str(row[3]), headers)
            self._state.check()  # after a failed write: 503 unless a write works again
            self._pending[k] = _Pending(fingerprint,
                                        asyncio.get_running_loop().create_future())
            return None

    async def finish(self, key: tuple[str, str], answer: StoredAnswer | None) -> None:
        k = self._row_key(key)
        pending = self._pending.get(k)
        if pending is None or pending.done.done():
            return
        try:  # still pending while it is written: a duplicate waits, then reads it
            if answer is not None and storable(answer.status):
                await self._store(k, pending.fingerprint, answer)
        except StateUnavailable as exc:
            log.warning("could not record an Idempotency-Key answer (%s): a retry will be "
                        "processed afresh", exc.message)
        finally:
            del self._pending[k]
            pending.done.set_result(None)

    async def _store(self, k: bytes, fingerprint: bytes, answer: StoredAnswer) -> None:
        expires = self._clock() + self._window
        values = (k, fingerprint, answer.status, answer.body, answer.content_type,
                  json.dumps(answer.headers) if answer.headers else "[]", expires)
        trim = self._state.rows["idempotency"] >= self._max_entries + self._slack

        def insert(db: sqlite3.Connection) -> int:
            db.execute("INSERT OR REPLACE INTO answers (k, fingerprint, status, body, "
                       "content_type, headers, expires) VALUES (?, ?, ?, ?, ?, ?, ?)", values)
            if not trim:
                return 0
            return int(db.execute(  # the oldest answers, a batch at once
                "DELETE FROM answers WHERE id IN (SELECT id FROM answers ORDER BY id "
                "LIMIT max(0, (SELECT count(*) FROM answers) - ?))",
                (self._max_entries,)).rowcount)

        trimmed = await self._state.write_soon(insert)
        self._state.rows["idempotency"] += 1 - trimmed
        kept = self._state.answers_kept
        kept.pop(k, None)
        kept[k] = expires  # at the end: the order of the rows' ids
        for _ in range(min(trimmed, len(kept))):
            del kept[next(iter(kept))]


def _same(stored: bytes, fingerprint: bytes) -> None:
    if not hmac.compare_digest(stored, fingerprint):
        raise Unprocessable("this Idempotency-Key was already used for a different request",
                            code="idempotency_key_reused")


class SqliteKeyValue:
    """``lasting.KeyValue`` in the state database."""

    def __init__(self, state: SqliteState, *, clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._clock = clock

    async def get(self, namespace: str, key: str) -> bytes | None:
        with self._state.reading() as db:
            row = db.execute("SELECT value FROM kv WHERE namespace = ? AND key = ? AND "
                             "(expires IS NULL OR expires > ?)",
                             (namespace, key, self._clock())).fetchone()
        return None if row is None else bytes(row[0])

    async def put(self, namespace: str, key: str, value: bytes, *,
                  ttl: float | None = None) -> None:
        check_name("namespace", namespace)
        check_name("key", key)
        row = (namespace, key, bytes(value), None if ttl is None else self._clock() + ttl)
        self._state.write(lambda db: db.execute(
            "INSERT OR REPLACE INTO kv (namespace, key, value, expires) VALUES (?, ?, ?, ?)",
            row))

    async def delete(self, namespace: str, key: str) -> bool:
        gone: int = self._state.write(lambda db: db.execute(
            "DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key)).rowcount)
        return gone > 0

    async def keys(self, namespace: str, prefix: str = "", limit: int = 1000) -> list[str]:
        with self._state.reading() as db:
            rows = db.execute("SELECT key FROM kv WHERE namespace = ? AND key >= ? AND "
                              "key < ? AND (expires IS NULL OR expires > ?) ORDER BY key "
                              "LIMIT ?", (namespace, prefix, prefix + _TOP if prefix else _TOP,
                                          self._clock(), max(0, limit))).fetchall()
        return [str(row[0]) for row in rows]


class SqliteQueues:
    """``lasting.Queues`` in the state database; ``max_items`` per queue. Each queue's
    length is counted once, then kept in memory (one gateway per directory)."""

    def __init__(self, state: SqliteState, *, max_items: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._max_items = max_items
        self._clock = clock
        self._lengths: dict[str, int] = {}

    def _length(self, queue: str) -> int:
        length = self._lengths.get(queue)
        if length is None:
            with self._state.reading() as db:
                length = int(db.execute("SELECT count(*) FROM queue WHERE name = ?",
                                        (queue,)).fetchone()[0])
            self._lengths[queue] = length
        return length

    async def push(self, queue: str, body: bytes) -> int:
        check_name("queue name", queue)
        length = self._length(queue)
        if length >= self._max_items:
            raise Overloaded(f"the queue {queue!r} holds {length} items already",
                             code="queue_full", retry_after=self._state.retry_after)
        self._lengths[queue] = length + 1  # its place, before the write is awaited
        row = (queue, bytes(body), self._clock())
        try:
            item_id = self._state.write(lambda db: int(db.execute(
                "INSERT INTO queue (name, body, pushed) VALUES (?, ?, ?)", row).lastrowid or 0))
        except BaseException:
            self._lengths[queue] -= 1
            raise
        return item_id

    async def peek(self, queue: str, limit: int = 1) -> list[QueueItem]:
        with self._state.reading() as db:
            rows = db.execute("SELECT id, body, pushed FROM queue WHERE name = ? ORDER BY id "
                              "LIMIT ?", (queue, max(0, limit))).fetchall()
        return [QueueItem(int(i), bytes(body), float(pushed)) for i, body, pushed in rows]

    async def ack(self, queue: str, item_id: int) -> bool:
        gone: int = self._state.write(lambda db: db.execute(
            "DELETE FROM queue WHERE name = ? AND id = ?", (queue, item_id)).rowcount)
        if gone and queue in self._lengths:
            self._lengths[queue] -= gone
        return gone > 0

    async def length(self, queue: str) -> int:
        return self._length(queue)

    async def oldest_age(self, queue: str) -> float | None:
        with self._state.reading() as db:
            row = db.execute("SELECT pushed FROM queue WHERE name = ? ORDER BY id LIMIT 1",
                             (queue,)).fetchone()
        return None if row is None else max(0.0, self._clock() - float(row[0]))


def sqlite_lasting(state: SqliteState, *, max_queue_items: int = 10_000) -> Lasting:
    return Lasting(SqliteKeyValue(state), SqliteQueues(state, max_items=max_queue_items),
                   durable=True)
