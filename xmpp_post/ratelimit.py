"""Throttling password guesses before they reach the XMPP server.

Only failed logins count: a request the XMPP server answered with "wrong credentials"
(``invalid_credentials``). Failures are kept with their time and count over a sliding
window of ``window`` seconds, under three keys:

* the pair (account, client address): at ``pair_limit`` failures that pair is refused;
* the client address alone (any account): at ``address_limit`` it is refused for all;
* the account alone (any address): at ``account_limit`` it is refused, except for a
  password the XMPP server has accepted for that account before (kept as an HMAC
  digest under a per-process key, compared in constant time), so the owner keeps
  working from any address while someone else guesses from many.

A refused request is answered 429 with ``Retry-After`` (when the oldest counted failure
leaves the window) without contacting the XMPP server. Memory is bounded: at most
``max_keys`` keys of each kind are tracked; the least recently failed are forgotten.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from xmpp_post.errors import TooManyRequests


class _Failures:
    """Failure times per key within a sliding window, for a bounded number of keys."""

    def __init__(self, window: float, limit: int, max_keys: int) -> None:
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

    def retry_after(self, key: object, now: float) -> float | None:
        """Seconds until ``key`` may try again, or None if it may try now."""
        times = self._recent(key, now)
        if times is None or len(times) < self.limit:
            return None
        # Allowed again once enough failures have left the window to drop below the limit.
        return times[len(times) - self.limit] + self.window - now

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


class AuthThrottle:
    """Counts failed logins and refuses further attempts; see the module docstring."""

    def __init__(self, *, window: float, pair_limit: int, address_limit: int,
                 account_limit: int, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._pairs = _Failures(window, pair_limit, max_keys)
        self._addresses = _Failures(window, address_limit, max_keys)
        self._accounts = _Failures(window, account_limit, max_keys)
        self._known_good: OrderedDict[str, bytes] = OrderedDict()
        self._max_keys = max_keys
        self._key = secrets.token_bytes(32)
        self._clock = clock

    def _digest(self, account: str, password: str) -> bytes:
        return hmac.new(self._key, f"{account}\0{password}".encode(), hashlib.sha256).digest()

    def check(self, account: str, address: str, password: str) -> None:
        """Raise TooManyRequests if this attempt must not reach the XMPP server."""
        now = self._clock()
        waits = [self._pairs.retry_after((account, address), now),
                 self._addresses.retry_after(address, now)]
        account_wait = self._accounts.retry_after(account, now)
        if account_wait is not None:
            known = self._known_good.get(account)
            if known is None or not hmac.compare_digest(known,
                                                        self._digest(account, password)):
                waits.append(account_wait)
        blocking = [w for w in waits if w is not None]
        if blocking:
            raise TooManyRequests("too many failed logins; try again later",
                                  code="too_many_failed_logins",
                                  retry_after=max(1, math.ceil(max(blocking))))

    def failed(self, account: str, address: str) -> None:
        """The XMPP server rejected the credentials."""
        now = self._clock()
        self._pairs.add((account, address), now)
        self._addresses.add(address, now)
        self._accounts.add(account, now)

    def succeeded(self, account: str, address: str, password: str) -> None:
        """The password worked: remember it for the account, forgive the pair."""
        self._pairs.clear((account, address))
        self._known_good[account] = self._digest(account, password)
        self._known_good.move_to_end(account)
        while len(self._known_good) > self._max_keys:
            self._known_good.popitem(last=False)
