"""A relay for testing the HTTP side without an XMPP server (as httpx ships MockTransport).

``FakeRelay`` records what it was asked to deliver and answers with a ``Receipt``, or
with what ``handler`` returns or raises: tests of routing, parsing, authentication and
the guards run against the real web application with nothing faked but the XMPP side.
It accepts every password (``login`` refuses only while ``fail`` is a ``LoginRefused``),
and holds no session that proves one (``verified`` is False): every HTTP Basic request
counts as a login. An error it raises is marked ``verified`` unless it is a
``LoginRefused``, as the real relay marks errors raised once a session is open.
``sessions`` lists one session per sender that logged in or delivered; ``preview`` is
the real relay's. Files (``upload``) are read while the request still has them, their
digest kept in ``uploaded``, and given a URL on ``upload.example.org``; ``upload_fail``
is raised by every upload while set, and ``file_limit`` is the limit
``known_file_limit`` reports for every domain (a larger file is refused 413, as the
sender's server's limit is).
End-to-end behaviour is still proven against a real server.

``ManualClock`` stands in for ``time.monotonic`` where the pool and rooms take a
``clock``: time moves only when a test says so, instead of the test sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from xmpp_post.errors import FileTooLarge, GatewayError, LoginRefused
from xmpp_post.files import FileToSend, UploadedFile
from xmpp_post.model import OutgoingMessage, Receipt, Sender, SessionInfo
from xmpp_post.xmpp.stanzas import preview  # the real writer: no library, no I/O

Handler = Callable[[Sender, OutgoingMessage], Awaitable[Receipt]]


@dataclass(frozen=True)
class FakeUpload:
    """A file ``FakeRelay`` was asked to upload: who sent it, as what, its SHA-256."""

    sender: str
    name: str
    size: int
    content_type: str
    sha256: str
    url: str


class FakeRelay:
    """A ``Relay`` that delivers nowhere. ``fail`` (an exception) is raised by every
    delivery while set; ``handler`` replaces the default answer; ``delivered`` is set
    after each delivery, so tests wait on it instead of sleeping."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.sent: list[tuple[Sender, OutgoingMessage]] = []
        self.fail: Exception | None = None
        self.handler = handler
        self.calls = 0
        self._called = asyncio.Condition()
        self.delivered = asyncio.Event()
        self.started = self.stopped = False
        self._ids = itertools.count(1)
        self.logins: list[Sender] = []
        self._opened: dict[str, float] = {}  # sender JID -> when its "session" opened
        self.uploaded: list[FakeUpload] = []
        self.upload_fail: Exception | None = None
        self.file_limit: int | None = None

    async def wait_calls(self, count: int) -> None:
        """Return once ``count`` deliveries have begun (an event, not a poll)."""
        async with self._called:
            await self._called.wait_for(lambda: self.calls >= count)

    async def deliver(self, sender: Sender, message: OutgoingMessage) -> Receipt:
        self.calls += 1
        async with self._called:
            self._called.notify_all()
        try:
            if self.fail is not None:
                raise self.fail
            receipt = (await self.handler(sender, message) if self.handler is not None else
                       Receipt(id=message.id or f"fake-{next(self._ids)}", sender=sender.jid,
                               to=message.to, type=message.type))
        except GatewayError as error:
            error.verified = not isinstance(error, LoginRefused)
            raise
        self.sent.append((sender, message))
        self._opened.setdefault(sender.jid, time.monotonic())
        self.delivered.set()
        return receipt

    def verified(self, _sender: Sender) -> bool:
        return False

    async def login(self, sender: Sender) -> None:
        """Accept the password, unless ``fail`` is a ``LoginRefused`` (then raise it)."""
        if isinstance(self.fail, LoginRefused):
            raise self.fail
        self.logins.append(sender)
        self._opened.setdefault(sender.jid, time.monotonic())

    def preview(self, message: OutgoingMessage) -> str:
        return preview(message)

    def sessions(self) -> list[SessionInfo]:
        now = time.monotonic()
        return [SessionInfo(jid, 0, now - opened, now - opened)
                for jid, opened in self._opened.items()]

    async def upload(self, sender: Sender, file: FileToSend,
                     encrypt: bool = False) -> UploadedFile:
        try:
            if self.upload_fail is not None:
                raise self.upload_fail
            if self.file_limit is not None and file.size > self.file_limit:
                raise FileTooLarge(f"the sender's server takes files of at most "
                                   f"{self.file_limit} bytes")
        except GatewayError as error:
            error.verified = not isinstance(error, LoginRefused)
            raise
        digest = await asyncio.to_thread(_sha256, file)
        url = (f"https://upload.example.org/{len(self.uploaded) + 1}/"
               f"{quote(file.name, safe='')}")
        self.uploaded.append(FakeUpload(sender.jid, file.name, file.size, file.content_type,
                                        digest, url))
        return UploadedFile(file.name, file.size, file.content_type, url)

    def known_file_limit(self, _domain: str) -> int | None:
        return self.file_limit

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


def _sha256(file: FileToSend) -> str:
    with file.path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class ManualClock:
    """A monotonic clock that moves only by ``advance()``, and by ``step`` each time it is
    read (for work that should see time pass as it goes); call it for the time."""

    def __init__(self, start: float = 1000.0, *, step: float = 0.0) -> None:
        if step < 0:
            raise ValueError("a monotonic clock does not go back")
        self.now = start
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock does not go back")
        self.now += seconds

    async def run_until(self, done: Callable[[], bool], *, step: float = 1.0,
                        most: float = 3600.0) -> float:
        """Move the clock ``step`` at each turn of the event loop until ``done()`` or
        ``most`` seconds have passed; the seconds that passed. For a clock that is the
        loop's own: its timers fire as they come due, however the work in between goes."""
        started = self.now
        while not done() and self.now - started < most:
            self.advance(step)
            await asyncio.sleep(0)
        return self.now - started
