"""State the guards keep between requests, behind async protocols so that it can live in
this process (``state.memory``) or be shared by several instances.

* ``IdempotencyStore``: the final answer per (sender, ``Idempotency-Key``), so a retry is
  answered, not sent again. ``claim`` then exactly one ``finish`` per owned key.
* ``LoginThrottle``: failed logins per account, address and pair; ``begin`` refuses an
  attempt (``TooManyRequests``) or lets it go on, ``end`` reports how it went. Attempts
  between ``begin`` and ``end`` count as failures meanwhile (each password once), so
  concurrent guesses cannot all reach the server.
* ``StateKey``: the HMAC key for digests the state keeps (a password is never stored,
  only a keyed digest of it); random per process unless instances share one.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True)
class StoredAnswer:
    """A final answer, as sent: status, body, media type and the headers to repeat."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())


LoginOutcome = Literal["failed", "succeeded", "unknown"]


class IdempotencyStore(Protocol):
    async def claim(self, key: tuple[str, str], fingerprint: bytes) -> StoredAnswer | None:
        """The stored answer to replay, or None: the caller now owns the key. A different
        request (``fingerprint``) under a used key raises ``Unprocessable``; a duplicate of
        one still in progress waits for it."""
        ...

    async def finish(self, key: tuple[str, str], answer: StoredAnswer | None) -> None:
        """Store the owner's answer (None, or an answer not worth keeping: release it)."""
        ...


class LoginThrottle(Protocol):
    async def begin(self, account: str, address: str, proof: bytes) -> None:
        """Raise ``TooManyRequests`` if this login attempt must not reach the server.
        ``proof`` is the ``StateKey`` digest of the account and password.

        An attempt let through is in flight until its ``end``: for each limit (pair,
        address, account) the attempts in flight with other passwords count as failures
        (each password once). An attempt with the password the server accepted for the
        account is not put in flight. An implementation may forget an attempt whose
        ``end`` never came after a request's time (its instance died)."""
        ...

    async def end(self, account: str, address: str, proof: bytes,
                  outcome: LoginOutcome) -> None:
        """How the attempt went: the server refused the credentials, accepted them, or
        could not tell (unreachable, timed out). Called once per ``begin`` that passed.
        ``succeeded`` makes ``proof`` the account's accepted password: the caller reports
        it only for a login the XMPP server accepted, never for a request that merely
        answered 2xx."""
        ...


class StateKey:
    """Keyed digests for state: ``digest(part, ...)`` is HMAC-SHA256 over the parts."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)

    def digest(self, *parts: str | bytes) -> bytes:
        framed = bytearray()
        for part in parts:
            data = part.encode("utf-8") if isinstance(part, str) else part
            framed += len(data).to_bytes(8, "big")
            framed += data
        return hmac.digest(self._key, framed, "sha256")  # one call: the C fast path


def storable(status: int) -> bool:
    """Whether an answer is final: a 2xx, or a client error other than those that may
    change on retry (401, 403, 408, 409, 429)."""
    return 200 <= status < 300 or (400 <= status < 500
                                   and status not in (401, 403, 408, 409, 429))
