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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

# The headers of an answer the gateway stores and replays (its errors' ``Allow`` and
# ``Retry-After``); any other header a stored answer carries is never replayed.
REPLAYED_HEADERS = frozenset({"allow", "retry-after"})
# The media types of the answers the gateway gives on sending routes: its JSON, a Slack
# sender's ``ok``, and a Discord sender's empty 204.
STORED_MEDIA_TYPES = frozenset({"application/json", "text/plain", "application/octet-stream"})
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class StoredAnswer:
    """A final answer, as sent: status, body, media type and the headers to repeat."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())

    def replayed_headers(self) -> dict[str, str]:
        """The headers to send again: only those the gateway stores (``REPLAYED_HEADERS``)."""
        return replayed(self.headers)


def replayed(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The ``REPLAYED_HEADERS`` among ``headers``."""
    return {name: value for name, value in headers if name.lower() in REPLAYED_HEADERS}


def check_answer(answer: StoredAnswer) -> None:
    """Raise ValueError unless ``answer`` is one the gateway could have stored: a final
    status (``storable``), one of its media types, headers of HTTP token names and
    printable ASCII values. For answers read back from a store others can write to."""
    if not storable(answer.status):
        raise ValueError(f"status {answer.status} is never stored")
    if answer.content_type not in STORED_MEDIA_TYPES:
        raise ValueError("a media type the gateway never answers with")
    for name, value in answer.headers:
        if not name or not set(name) <= _TOKEN:
            raise ValueError("a header name that is not an HTTP token")
        if len(value) > 1000 or not (value.isascii() and value.isprintable()):
            raise ValueError("a header value that is not printable ASCII")


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
