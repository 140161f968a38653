"""SCRAM's SaltedPassword (RFC 5802, 3) kept in memory, so a returning sender's login
skips PBKDF2.

RFC 5802 (5.1) lets a client keep ``SaltedPassword`` for a password, salt and iteration
count instead of recomputing it. ``SaltedPasswords`` keeps one per account and password:
under the account's JID and the keyed digest of the password the session pool already
uses (``pool.SessionPool``), never the password itself. It is

* bounded: at most ``capacity`` entries, the least recently used one goes first;
* in this process's memory only: never written to disk or Redis, never logged (no
  ``repr`` shows a value);
* replaced when the server sends another salt, iteration count or hash for that account
  and password (the server changed them: the old value is dropped at once);
* written only after the server proved it knows the password too (its
  ``ServerSignature`` matched: slixmpp checks it before ``auth_success``), and dropped
  when a login that used it is refused.

It never answers a login by itself: the value only stands in for PBKDF2 on the client's
side of SCRAM, and the server still checks the proof made from it on every login. A
wrong password has another digest, so it finds nothing here, costs a full login at the
server and counts in the login throttle like any refused login.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

Params = tuple[str, bytes, int]  # hash name, salt, iteration count, as the server sent them


@dataclass(frozen=True, slots=True)
class _Entry:
    params: Params
    salted: bytes = b""

    def __repr__(self) -> str:  # never the value
        return "<SaltedPassword>"


class SaltedPasswords:
    """At most ``capacity`` SaltedPasswords by (JID, keyed password digest); see the
    module docstring. ``capacity`` 0 keeps none."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, bytes], _Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<SaltedPasswords {len(self._entries)} of {self.capacity}>"

    def login(self, jid: str, digest: bytes) -> LoginMemo:
        """What one login of ``jid`` with the password of ``digest`` reads and writes."""
        return LoginMemo(self, (jid, digest))

    def _recall(self, key: tuple[str, bytes], params: Params) -> bytes | None:
        entry = self._entries.get(key)
        if entry is not None and entry.params != params:
            del self._entries[key]  # the server changed salt, iterations or hash
            entry = None
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.salted

    def _keep(self, key: tuple[str, bytes], entry: _Entry) -> None:
        if self.capacity <= 0:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def _forget(self, key: tuple[str, bytes]) -> None:
        self._entries.pop(key, None)


class LoginMemo:
    """One login's use of ``SaltedPasswords``: ``recall`` when the server's first
    challenge names the salt and iterations, ``computed`` after PBKDF2, ``confirmed``
    once the server proved itself (``auth_success``), ``refused`` when it refused."""

    __slots__ = ("_cache", "_key", "_pending")

    def __init__(self, cache: SaltedPasswords, key: tuple[str, bytes]) -> None:
        self._cache = cache
        self._key = key
        self._pending: _Entry | None = None

    def __repr__(self) -> str:
        return "<LoginMemo>"

    def recall(self, params: Params) -> bytes | None:
        return self._cache._recall(self._key, params)

    def computed(self, params: Params, salted: bytes) -> None:
        self._pending = _Entry(params, salted)

    def confirmed(self) -> None:
        if self._pending is not None:
            self._cache._keep(self._key, self._pending)
            self._pending = None

    def refused(self) -> None:
        self._pending = None
        self._cache._forget(self._key)
