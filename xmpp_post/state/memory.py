"""The state of one process: ``MemoryIdempotencyStore`` and ``MemoryLoginThrottle``.

Idempotency
-----------
Results remembered per ``Idempotency-Key``, so a retry never sends a message twice.

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

Login throttle
--------------
Throttling password guesses before they reach the XMPP server.

Only failed logins count: a request the XMPP server answered with "wrong credentials"
(``invalid_credentials``). Failures are kept with their time and count over a sliding
window of ``window`` seconds, under three keys:

* the pair (account, client address): at ``pair_limit`` failures that pair is refused;
* the client address alone (any account): at ``address_limit`` it is refused for all;
* the account alone (any address): at ``account_limit`` it is refused, except for a
  password the XMPP server has accepted for that account before (kept as an HMAC
  digest under a per-process key, compared in constant time), so the owner keeps
  working from any address while someone else guesses from many.

Logins in flight count as failures until they end: an attempt is refused when the
failures plus the other attempts in flight (each distinct password once) reach a limit,
so concurrent guesses do not all reach the server before the first one fails. An
attempt with the password the server accepted for the account is never counted.

A refused request is answered 429 with ``Retry-After`` (when the oldest counted failure
leaves the window, or 1 s when it is attempts in flight) without contacting the XMPP
server. Memory is bounded: at most ``max_keys`` keys of each kind are tracked; the least
recently failed are forgotten; attempts in flight are forgotten when they end.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from xmpp_post.errors import TooManyRequests, Unprocessable
from xmpp_post.state import LoginOutcome, StoredAnswer, storable


@dataclass
class _Entry:
    fingerprint: bytes
    done: asyncio.Future[None]
    answer: StoredAnswer | None = None
    expires: float = field(default=float("inf"))


class MemoryIdempotencyStore:
    """See the module docstring. ``claim`` then exactly one ``finish`` per owned key."""

    def __init__(self, *, window: float, max_entries: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def claim(self, key: tuple[str, str], fingerprint: bytes) -> StoredAnswer | None:
        """The stored answer to replay, or None: the caller now owns the key."""
        while True:
            self._expire()
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = _Entry(fingerprint, asyncio.get_running_loop().create_future())
                self._trim()
                return None
            if not hmac.compare_digest(entry.fingerprint, fingerprint):
                raise Unprocessable("this Idempotency-Key was already used for a different request",
                                    code="idempotency_key_reused")
            if entry.answer is not None:
                return entry.answer
            await asyncio.shield(entry.done)

    async def finish(self, key: tuple[str, str], answer: StoredAnswer | None) -> None:
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


class _Failures:
    """Failure times per key within a sliding window, for a bounded number of keys."""

    def __init__(self, name: str, window: float, limit: int, max_keys: int) -> None:
        self.name = name
        self.window = window
        self.limit = limit
        self._max_keys = max_keys
        self._times: OrderedDict[object, deque[float]] = OrderedDict()

    def _recent(self, key: object, now: float) -> deque[float] | None:
        times = self._times.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._times[key]
            return None
        return times

    def retry_after(self, key: object, now: float, in_flight: int = 0) -> float | None:
        """Seconds until ``key`` may try again (with ``in_flight`` other attempts
        counting as failures), or None if it may try now."""
        times = self._recent(key, now)
        count = len(times) if times is not None else 0
        if count + in_flight < self.limit:
            return None
        if times is None or count < self.limit:
            return 1.0  # attempts in flight: they end within a request's time
        # Allowed again once enough failures have left the window to drop below the limit.
        return times[count - self.limit] + self.window - now

    def add(self, key: object, now: float) -> None:
        times = self._recent(key, now) or deque()
        times.append(now)
        if len(times) > self.limit:
            times.popleft()  # older ones no longer matter for the decision
        self._times[key] = times
        self._times.move_to_end(key)
        while len(self._times) > self._max_keys:
            self._times.popitem(last=False)

    def clear(self, key: object) -> None:
        self._times.pop(key, None)


class _InFlight:
    """Login attempts under way per key, counted by password (its proof)."""

    def __init__(self) -> None:
        self._proofs: dict[object, Counter[bytes]] = {}

    def others(self, key: object, proof: bytes) -> int:
        """Distinct passwords in flight for ``key`` other than ``proof``."""
        proofs = self._proofs.get(key)
        return 0 if proofs is None else len(proofs) - (proof in proofs)

    def add(self, key: object, proof: bytes) -> None:
        self._proofs.setdefault(key, Counter())[proof] += 1

    def remove(self, key: object, proof: bytes) -> None:
        proofs = self._proofs.get(key)
        if proofs is None or proof not in proofs:
            return
        proofs[proof] -= 1
        if proofs[proof] <= 0:
            del proofs[proof]
        if not proofs:
            del self._proofs[key]

    def __len__(self) -> int:
        return len(self._proofs)


class MemoryLoginThrottle:
    """Counts failed logins and refuses further attempts; see the module docstring."""

    def __init__(self, *, window: float, pair_limit: int, address_limit: int,
                 account_limit: int, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._pairs = _Failures("pair", window, pair_limit, max_keys)
        self._addresses = _Failures("address", window, address_limit, max_keys)
        self._accounts = _Failures("account", window, account_limit, max_keys)
        self._known_good: OrderedDict[str, bytes] = OrderedDict()  # account -> proof
        self._in_flight = _InFlight()
        self._max_keys = max_keys
        self._clock = clock

    def _counters(self, account: str, address: str) -> list[tuple[_Failures, object]]:
        return [(self._pairs, (account, address)), (self._addresses, address),
                (self._accounts, account)]

    async def begin(self, account: str, address: str, proof: bytes) -> None:
        """Raise TooManyRequests if this attempt must not reach the XMPP server."""
        now = self._clock()
        known = self._known_good.get(account)
        accepted = known is not None and hmac.compare_digest(known, proof)
        waits = []
        for failures, key in self._counters(account, address):
            if failures is self._accounts and accepted:
                continue  # the owner's accepted password passes an account lock
            in_flight = 0 if accepted else self._in_flight.others((failures.name, key), proof)
            waits.append(failures.retry_after(key, now, in_flight))
        blocking = [w for w in waits if w is not None]
        if blocking:
            raise TooManyRequests("too many failed logins; try again later",
                                  code="too_many_failed_logins",
                                  retry_after=max(1, math.ceil(max(blocking))))
        if not accepted:  # an accepted password is no guess: it never counts in flight
            for failures, key in self._counters(account, address):
                self._in_flight.add((failures.name, key), proof)

    async def end(self, account: str, address: str, proof: bytes,
                  outcome: LoginOutcome) -> None:
        for failures, key in self._counters(account, address):
            self._in_flight.remove((failures.name, key), proof)
        if outcome == "failed":
            self._failed(account, address)
        elif outcome == "succeeded":
            self._succeeded(account, address, proof)

    def _failed(self, account: str, address: str) -> None:
        """The XMPP server rejected the credentials."""
        now = self._clock()
        self._pairs.add((account, address), now)
        self._addresses.add(address, now)
        self._accounts.add(account, now)

    def _succeeded(self, account: str, address: str, proof: bytes) -> None:
        """The password worked: remember it for the account, forgive the pair."""
        self._pairs.clear((account, address))
        self._known_good[account] = proof
        self._known_good.move_to_end(account)
        while len(self._known_good) > self._max_keys:
            self._known_good.popitem(last=False)
