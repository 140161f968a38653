"""Which domains are group chat services, shared by every session of the gateway.

A domain is a group chat service when its disco#info lists an identity of category
``conference``. Answers are cached per domain (``SERVICE_TTL``; "could not tell" only
``UNKNOWN_TTL``), at most ``max_entries`` domains, least recently asked first out; one
lookup per domain at a time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from xmpp_post.locks import KeyedLocks

SERVICE_TTL = 600.0
UNKNOWN_TTL = 60.0


class ServiceDirectory:
    """See the module docstring."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._known: OrderedDict[str, tuple[bool, float]] = OrderedDict()
        self._locks = KeyedLocks()
        self.max_entries = max_entries

    def __len__(self) -> int:
        return len(self._known)

    @property
    def asking(self) -> int:
        """Domains being asked about now (each holds a lock until answered)."""
        return len(self._locks)

    def _cached(self, domain: str) -> bool | None:
        known = self._known.get(domain)
        if known is None:
            return None
        if known[1] <= time.monotonic():
            del self._known[domain]
            return None
        self._known.move_to_end(domain)
        return known[0]

    async def is_group_chat_service(
            self, domain: str, ask: Callable[[str], Awaitable[bool | None]]) -> bool:
        """Cached answer, or ``ask(domain)`` (None: could not tell, remembered briefly)."""
        cached = self._cached(domain)
        if cached is not None:
            return cached
        async with self._locks.hold(domain):
            cached = self._cached(domain)
            if cached is not None:
                return cached
            answer = await ask(domain)
            ttl = SERVICE_TTL if answer is not None else UNKNOWN_TTL
            self._known[domain] = (bool(answer), time.monotonic() + ttl)
            while len(self._known) > self.max_entries:
                self._known.popitem(last=False)
            return bool(answer)
