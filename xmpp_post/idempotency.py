"""Results remembered per ``Idempotency-Key``, so a retry never sends a message twice.

The key is scoped to the sender: (sender JID, header value). The first request with a
key owns it; its final answer is stored for ``window`` seconds if it is deterministic —
a 2xx, or a client error other than 401/403/408/409/429 — and replayed to every later
request with the same key and the same fingerprint (method, path, media type, body and
the sender's password digest). A different request under a used key is answered 422
``idempotency_key_reused``. A duplicate arriving while the first is still in progress
waits for it (bounded by the first request's own timeout) and then gets its answer.
Answers that may change on retry (401, 429, 503, 504, ...) are not stored: the key is
released, and the retry is processed as a new request.

At most ``max_entries`` keys are kept; the oldest finished ones are forgotten first.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from xmpp_post.errors import BadRequest, GatewayError, Unprocessable

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
NOT_STORED = frozenset({401, 403, 408, 409, 429})


@dataclass(frozen=True)
class StoredAnswer:
    """A final answer: a successful response's parts, or the client error raised."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    error: GatewayError | None = None


def storable(status: int) -> bool:
    return 200 <= status < 300 or (400 <= status < 500 and status not in NOT_STORED)


def validate_key(value: str) -> str:
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise BadRequest(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
                         code="invalid_idempotency_key")
    return value


def fingerprint(*parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


@dataclass
class _Entry:
    fingerprint: bytes
    done: asyncio.Future[None]
    answer: StoredAnswer | None = None
    expires: float = field(default=float("inf"))


class IdempotencyStore:
    """See the module docstring. ``claim`` then exactly one ``finish`` per owned key."""

    def __init__(self, *, window: float, max_entries: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def claim(self, key: tuple[str, str], print_: bytes) -> StoredAnswer | None:
        """The stored answer to replay, or None: the caller now owns the key."""
        while True:
            self._expire()
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = _Entry(print_, asyncio.get_running_loop().create_future())
                self._trim()
                return None
            if not hmac.compare_digest(entry.fingerprint, print_):
                raise Unprocessable(f"this {HEADER} was already used for a different request",
                                    code="idempotency_key_reused")
            if entry.answer is not None:
                return entry.answer
            await asyncio.shield(entry.done)

    def finish(self, key: tuple[str, str], answer: StoredAnswer | None) -> None:
        """Store the owner's answer (None or not storable: release the key)."""
        entry = self._entries.get(key)
        if entry is None or entry.answer is not None:
            return
        if answer is not None and storable(answer.status):
            entry.answer = answer
            entry.expires = self._clock() + self._window
            self._entries.move_to_end(key)
        else:
            del self._entries[key]
        if not entry.done.done():
            entry.done.set_result(None)

    def _expire(self) -> None:
        now = self._clock()
        expired = []
        for key, entry in self._entries.items():  # finished entries are in finishing order
            if entry.answer is None:
                continue
            if entry.expires > now:
                break
            expired.append(key)
        for key in expired:
            del self._entries[key]

    def _trim(self) -> None:
        while len(self._entries) > self._max_entries:
            oldest = next((k for k, e in self._entries.items() if e.answer is not None), None)
            if oldest is None:
                return
            del self._entries[oldest]
