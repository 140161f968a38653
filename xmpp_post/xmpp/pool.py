"""One XMPP session per sender, opened on first use and reused while it lives.

* Get-or-open runs under a per-sender lock, so concurrent first requests open one session.
* A session is reused only by a request whose password matches the one that opened it;
  passwords are kept as keyed BLAKE2b digests (a MAC) under a key that lives only in
  this process, compared in constant time. A request with another password opens a
  fresh session (the server checks it); if that succeeds it replaces the old one.
* Idle sessions close after ``idle_timeout``; at most ``max_sessions`` are open, and the
  least recently used idle one closes to make room.
* At most ``max_opening`` sessions are being opened (TLS, SASL) at once; more wait.
* Requests that queued behind a login the server refused, with the same password, get
  that refusal without asking the server again: a burst of one wrong password is one
  failed login on the server, not one per request.
* A session is reused for at most ``idle_timeout`` after it opened; then the next
  request opens a fresh one, so the server checks the password again (a password
  changed on the server stops working within that time even for a busy sender).
* Time is read from ``clock`` (``time.monotonic`` unless a test injects another).
* A login refused for an account the gateway holds the password of (a token's or a
  webhook's, ``sender.configured``) is the operator's problem, not the caller's: it is
  logged at error level with the account, counted (``account_login_failures``), and
  raised as ``AccountLoginFailed``, never as the caller's ``LoginRefused``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from xmpp_post.errors import AccountLoginFailed, GatewayError, LoginRefused, XmppUnavailable
from xmpp_post.files import FileToSend, UploadSlot
from xmpp_post.metrics import Metrics
from xmpp_post.model import OutgoingMessage, Receipt, Sender, SessionInfo
from xmpp_post.tasks import TaskGroup
from xmpp_post.xmpp.upload import UploadServices

log = logging.getLogger(__name__)


class Session(Protocol):
    """What the pool needs of a session (``xmpp.session.XmppSession`` in production)."""

    @property
    def alive(self) -> bool: ...

    @property
    def in_flight(self) -> int: ...

    async def open(self) -> None: ...

    async def deliver(self, message: OutgoingMessage) -> Receipt: ...

    async def upload_slot(self, file: FileToSend, services: UploadServices) -> UploadSlot: ...

    async def close(self, wait: float = 2.0) -> None: ...


# The factory gets the keyed digest of the sender's password too (``SessionPool._digest``):
# what a session keeps per password across logins is keyed by it, never by the password.
SessionFactory = Callable[[Sender, bytes], Session]


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: Session | None = None
    digest: bytes = b""
    last_used: float = 0.0
    opened_at: float = 0.0
    refused: bytes = b""  # digest of the password of the last login the server refused
    refused_at: float = 0.0


class SessionPool:
    """Sessions keyed by sender JID; see the module docstring."""

    def __init__(self, factory: SessionFactory, *, idle_timeout: float, max_sessions: int,
                 retry_after: int = 5, max_opening: int = 16,
                 metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = factory
        self._clock = clock
        self._metrics = metrics
        self._idle_timeout = idle_timeout
        self._max_sessions = max_sessions
        self._retry_after = retry_after
        self._key = secrets.token_bytes(32)
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._opening = asyncio.Semaphore(max_opening)
        self._tasks = TaskGroup("session pool")
        self._reaper: asyncio.Task[None] | None = None
        self.opened_total = 0

    def _digest(self, password: str) -> bytes:
        # Keyed BLAKE2b (a MAC by design) costs well under a µs here; OpenSSL's HMAC
        # through hmac.digest cost ~5 µs a call (provider lookups), twice per request.
        return hashlib.blake2b(password.encode("utf-8"), key=self._key,
                               digest_size=32).digest()

    @property
    def open_sessions(self) -> int:
        return sum(1 for s in self._slots.values() if s.session is not None and s.session.alive)

    def describe(self) -> list[SessionInfo]:
        """The open sessions, least recently used first (no passwords, no digests)."""
        now = time.monotonic()
        return [SessionInfo(jid, slot.session.in_flight, now - slot.opened_at,
                            now - slot.last_used)
                for jid, slot in self._slots.items()
                if slot.session is not None and slot.session.alive]

    async def deliver(self, sender: Sender, message: OutgoingMessage) -> Receipt:
        """Send as ``sender`` on its session (opening one if needed), with the server's proof."""
        session = await self.session_for(sender)
        return await session.deliver(message)

    async def session_for(self, sender: Sender) -> Session:
        digest = self._digest(sender.password)
        slot = self._slots.get(sender.jid)
        if slot is None:
            slot = self._slots[sender.jid] = _Slot()
        self._slots.move_to_end(sender.jid)
        slot.last_used = self._clock()
        current = slot.session
        if current is not None and self._reusable(slot, digest):
            return current
        queued_at = self._clock()
        async with slot.lock:
            current = slot.session
            if current is not None and self._reusable(slot, digest):
                return current
            if slot.refused_at >= queued_at and hmac.compare_digest(slot.refused, digest):
                refused = LoginRefused("the XMPP server rejected the credentials")
                raise self._account_refused(sender, refused) if sender.configured else refused
            await self._make_room(sender.jid)
            fresh = self._factory(sender, digest)
            try:
                async with self._opening:
                    await fresh.open()
            except BaseException as exc:
                if isinstance(exc, LoginRefused):
                    slot.refused, slot.refused_at = digest, self._clock()
                await fresh.close(wait=0)
                if self._metrics is not None:
                    reason = exc.code if isinstance(exc, GatewayError) else type(exc).__name__
                    self._metrics.session_open_failures.labels(reason=reason).inc()
                if isinstance(exc, LoginRefused) and sender.configured:
                    raise self._account_refused(sender, exc) from None
                raise
            self.opened_total += 1
            if self._metrics is not None:
                self._metrics.session_opens.inc()
            slot.session, slot.digest = fresh, digest
            slot.last_used = slot.opened_at = self._clock()
            if current is not None:
                self._close_later(current)
            return fresh

    def _account_refused(self, sender: Sender, exc: LoginRefused) -> AccountLoginFailed:
        log.error("the XMPP server refused the configured password of %s (used by %s): "
                  "was it changed on the server? Update its password_file and reload",
                  sender.jid, sender.via)
        if self._metrics is not None:
            self._metrics.account_login_failures.labels(account=sender.jid).inc()
        return AccountLoginFailed(f"the gateway could not log in as {sender.jid}; its "
                                  "operator has been told", condition=exc.condition)

    def verified(self, sender: Sender) -> bool:
        """Whether an open session already proved this sender's password: a request of
        theirs needs no login (so it cannot be a password guess)."""
        slot = self._slots.get(sender.jid)
        return slot is not None and self._reusable(slot, self._digest(sender.password))

    def _reusable(self, slot: _Slot, digest: bytes) -> bool:
        session = slot.session
        return (session is not None and session.alive
                and self._clock() - slot.opened_at < self._idle_timeout
                and hmac.compare_digest(slot.digest, digest))

    async def _make_room(self, opening: str) -> None:
        """Close least-recently-used idle sessions until one more fits under the cap."""
        if len(self._slots) <= self._max_sessions:  # slots >= open sessions: no need to count
            return
        while self.open_sessions >= self._max_sessions:
            victim = next((jid for jid, s in self._slots.items()
                           if jid != opening and s.session is not None and s.session.alive
                           and s.session.in_flight == 0 and not s.lock.locked()), None)
            if victim is None:
                raise XmppUnavailable("the gateway has reached its session limit",
                                      code="session_limit", retry_after=self._retry_after)
            slot = self._slots.pop(victim)
            log.info("closing the least recently used session (%s) to make room", victim)
            if slot.session is not None:
                self._close_later(slot.session)

    def _close_later(self, session: Session) -> None:
        self._tasks.spawn(session.close(), "closing a session")

    def start(self) -> None:
        """Start closing idle sessions in the background."""
        if self._reaper is None:
            self._reaper = self._tasks.spawn(self._reap_idle(), "closing idle sessions")

    async def _reap_idle(self) -> None:
        interval = max(0.05, min(self._idle_timeout / 4, 30.0))
        while True:
            await asyncio.sleep(interval)
            self.close_idle()

    def close_idle(self) -> int:
        """Close sessions idle longer than the timeout, and forget dead ones."""
        now = self._clock()
        closed = 0
        for jid, slot in list(self._slots.items()):
            if slot.lock.locked():
                continue
            session = slot.session
            if session is None or not session.alive:
                del self._slots[jid]
                if session is not None:
                    self._close_later(session)  # releases what a dropped stream left
            elif now - slot.last_used > self._idle_timeout and session.in_flight == 0:
                del self._slots[jid]
                log.info("closing idle session of %s", jid)
                self._close_later(session)
                closed += 1
        return closed

    async def stop(self) -> None:
        """Close every session cleanly; idempotent."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for slot in self._slots.values():
            if slot.session is not None:
                self._close_later(slot.session)
        self._slots.clear()
        await self._tasks.wait()
