"""With several instances (``redis_url``), what the instances that run a bot in turn
share in Redis, so that one taking a bot over neither loses nor re-sends what the last
one had queued:

* the **cursor**: the archive id (XEP-0313) of the last message handled (delivered,
  answered, rejected or expired) by the instance holding the bot's lease. Only the
  holder moves it: each write is one script that checks the lease is still this
  instance's (``BotLease.owner``), so an instance that lost the lease without noticing
  yet cannot move it back. An instance taking the bot over reads the archive after it,
  so every message not yet handled is queued there again, under the same ``webhook-id``
  (``signing.message_webhook_id``). With no cursor yet, the first holder sets it
  (``anchor``) to the last archive id its own state directory knows (a gateway that ran
  alone before), else to the time its session came online (less a margin), read with
  the archive's ``start``: a message that reached the account before a first
  holder handled anything is not lost, and one read twice carries the same id.
* the **handled** record: one key per ``webhook-id`` handled, by any instance, kept
  ``retry_for`` plus ``MARGIN`` (longer than any copy of that message may still be
  delivered: an older one expires). Before delivering an item, the holder looks it up,
  and drops an item another instance handled (``handled_elsewhere``).

Every key expires by itself: a cursor ``CURSOR_TTL`` after its holder last wrote or
kept it (``keep``: at each lease taken, then hourly), a handled record as above.
Nothing read back is trusted: a cursor longer than ``MAX_ID`` or not text is ignored
(logged). Redis failures reach the caller (``record``, ``handled``: the runner logs them
and delivers; a duplicate then carries the same ``webhook-id``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from xmpp_post.incoming import ArchivePoint

log = logging.getLogger(__name__)

MARGIN = 600.0  # seconds a handled record outlives retry_for
MAX_ID = 200  # characters of a cursor: "id:" and an archive id (at most 180), or "since:"

CURSOR_TTL = 30 * 24 * 3600.0  # seconds a cursor lasts unless its holder keeps it

_RECORD = """
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
if ARGV[3] ~= '' and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0
"""
_ANCHOR = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3])
end
return redis.call('GET', KEYS[2])
"""
_KEEP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 0
"""


class Handover(Protocol):
    """What a bot's runner shares with the other instances (see the module docstring)."""

    async def cursor(self) -> str | None:
        """Where the archive is read from (``point``; None: not set yet)."""
        ...

    async def anchor(self, start: str) -> str | None:
        """Set the cursor to ``start`` if it is not set (holder only); the cursor."""
        ...

    async def handled(self, webhook_id: str) -> bool:
        """Whether an instance handled the message of ``webhook_id`` already."""
        ...

    async def keep(self) -> bool:
        """Make the cursor last ``CURSOR_TTL`` more (holder only)."""
        ...

    async def record(self, webhook_id: str, archive_id: str | None) -> bool:
        """``webhook_id`` is handled; the cursor moves to ``archive_id`` (if given) if
        this instance still holds the lease: whether it moved."""
        ...


def _text(value: object) -> str | None:
    if value is None:
        return None
    try:
        text = value.decode() if isinstance(value, bytes) else str(value)
    except UnicodeDecodeError:
        text = None
    if text is None or len(text) > MAX_ID or point(text) is None:
        log.error("bot handover: an unreadable cursor in Redis is ignored")
        return None
    return text


def point(cursor: str) -> ArchivePoint | None:
    """The archive point a cursor names: ``id:<archive id>`` or ``since:<time>``."""
    kind, _, value = cursor.partition(":")
    if not value:
        return None
    if kind == "id":
        return ArchivePoint(after=value)
    return ArchivePoint(since=value) if kind == "since" else None


_CURSOR_MS = int(CURSOR_TTL * 1000)


class RedisHandover:
    """The ``Handover`` of one bot on ``client`` (redis-py's asyncio client): ``lease_key``
    and ``owner`` (its ``BotLease``), ``cursor_key``, ``handled_key(webhook_id)``."""

    def __init__(self, client: Any, *, lease_key: str, owner: str, cursor_key: str,
                 handled_key: Callable[[str], str], keep: float) -> None:
        self._client = client
        self._lease_key, self._owner = lease_key, owner
        self._cursor_key = cursor_key
        self._handled_key = handled_key
        self._keep_ms = int((keep + MARGIN) * 1000)

    async def cursor(self) -> str | None:
        return _text(await self._client.get(self._cursor_key))

    async def anchor(self, start: str) -> str | None:
        return _text(await self._client.eval(_ANCHOR, 2, self._lease_key, self._cursor_key,
                                             self._owner, start, _CURSOR_MS))

    async def keep(self) -> bool:
        return bool(await self._client.eval(_KEEP, 2, self._lease_key, self._cursor_key,
                                            self._owner, _CURSOR_MS))

    async def handled(self, webhook_id: str) -> bool:
        return bool(await self._client.exists(self._handled_key(webhook_id)))

    async def record(self, webhook_id: str, archive_id: str | None) -> bool:
        cursor = "id:" + archive_id if archive_id and len(archive_id) < MAX_ID - 3 else ""
        return bool(await self._client.eval(
            _RECORD, 3, self._lease_key, self._handled_key(webhook_id), self._cursor_key,
            self._owner, self._keep_ms, cursor, _CURSOR_MS))
