"""With several instances (``redis_url``), each bot runs on one instance at a time: the
one holding the bot's lease, a Redis key that expires unless its holder renews it.

``acquire`` takes the lease if nobody holds it; ``renew`` extends it only while this
instance still holds it (one script: check and extend are one step); ``release`` gives
it up at a clean stop, so another instance takes over at its next try, within
``TRY_EVERY`` seconds; after a crash, within ``TTL`` seconds more.
"""

from __future__ import annotations

import secrets
from typing import Any

TTL = 10.0  # seconds a lease lasts without renewal
RENEW_EVERY = TTL / 3
TRY_EVERY = 2.0  # seconds between tries to take a lease someone else holds

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class BotLease:
    """The lease under ``key`` on ``client`` (redis-py's asyncio client)."""

    def __init__(self, client: Any, key: str, *, ttl: float = TTL) -> None:
        self._client = client
        self.key = key
        self.owner = secrets.token_hex(12)
        self._ms = int(ttl * 1000)

    async def acquire(self) -> bool:
        return bool(await self._client.set(self.key, self.owner, nx=True, px=self._ms))

    async def renew(self) -> bool:
        return bool(await self._client.eval(_RENEW, 1, self.key, self.owner, self._ms))

    async def release(self) -> None:
        await self._client.eval(_RELEASE, 1, self.key, self.owner)
