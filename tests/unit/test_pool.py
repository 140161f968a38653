"""The session pool with fake sessions: locking, password checks, caps, idleness.

Time is a ``ManualClock``; the tests wait on the fake sessions' events, never sleep."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from xmpp_post.errors import LoginRefused, XmppUnavailable
from xmpp_post.files import FileToSend, UploadSlot
from xmpp_post.model import OutgoingMessage, Receipt, Sender
from xmpp_post.testing import ManualClock
from xmpp_post.xmpp.pool import SessionPool
from xmpp_post.xmpp.upload import UploadServices

MSG = OutgoingMessage(to="bob@example.org", body="hi")


class FakeSession:
    """Stands in for the XMPP side: the 'server' knows one password per account."""

    passwords: ClassVar[dict[str, str]] = {}

    login: ClassVar[asyncio.Event]  # every login waits for it (set unless a test holds it)
    logging_in: ClassVar[asyncio.Event]  # set once a login waits for ``login``

    def __init__(self, creds: Sender, opens: list[str]) -> None:
        self.creds, self.opens = creds, opens
        self.alive = False
        self.in_flight = 0
        self.shut = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()
        self.delivering = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self.shut.is_set()

    async def open(self) -> None:
        self.logging_in.set()
        await self.login.wait()  # the server's answer
        self.opens.append(self.creds.jid)
        if self.passwords.get(self.creds.jid) != self.creds.password:
            raise LoginRefused("wrong")
        self.alive = True

    async def deliver(self, message: OutgoingMessage) -> Receipt:
        self.in_flight += 1
        self.delivering.set()
        await self.gate.wait()
        self.in_flight -= 1
        return Receipt("id", self.creds.jid, message.to, message.type)

    async def upload_slot(self, file: FileToSend, services: UploadServices) -> UploadSlot:
        raise AssertionError("the pool never asks for upload slots")

    async def close(self, wait: float = 2.0) -> None:
        self.alive = False
        self.shut.set()


async def closed(session: FakeSession) -> bool:
    """Wait for the pool's closing task to close ``session``."""
    await asyncio.wait_for(session.shut.wait(), 5)
    return True


@pytest.fixture
def opens() -> list[str]:
    FakeSession.passwords = {"a@x": "pa", "b@x": "pb", "c@x": "pc"}
    FakeSession.login, FakeSession.logging_in = asyncio.Event(), asyncio.Event()
    FakeSession.login.set()
    return []


def make_pool(opens: list[str], *, idle_timeout: float = 60.0, max_sessions: int = 10,
              clock: ManualClock | None = None) -> tuple[SessionPool, list[FakeSession]]:
    made: list[FakeSession] = []

    def factory(creds: Sender, digest: bytes) -> FakeSession:
        made.append(FakeSession(creds, opens))
        return made[-1]

    return SessionPool(factory, idle_timeout=idle_timeout, max_sessions=max_sessions,
                       clock=clock or ManualClock()), made


async def test_concurrent_first_requests_open_one_session(opens: list[str]) -> None:
    pool, made = make_pool(opens)
    FakeSession.login.clear()
    requests = [asyncio.ensure_future(pool.deliver(Sender("a@x", "pa"), MSG))
                for _ in range(50)]
    # The first request's login waits for the server; the other 49 ran in the same turn
    # of the loop, before this test resumes, and queued behind it.
    await FakeSession.logging_in.wait()
    FakeSession.login.set()
    await asyncio.gather(*requests)
    assert opens == ["a@x"] and len(made) == 1


async def test_reuse_requires_the_same_password(opens: list[str]) -> None:
    pool, made = make_pool(opens)
    await pool.deliver(Sender("a@x", "pa"), MSG)
    with pytest.raises(LoginRefused):
        await pool.deliver(Sender("a@x", "guess"), MSG)
    assert opens == ["a@x", "a@x"]  # the wrong password was checked by the 'server'
    await pool.deliver(Sender("a@x", "pa"), MSG)
    assert opens == ["a@x", "a@x"] and not made[0].closed  # the first session is reused


async def test_changed_password_replaces_the_session(opens: list[str]) -> None:
    pool, made = make_pool(opens)
    await pool.deliver(Sender("a@x", "pa"), MSG)
    FakeSession.passwords["a@x"] = "new"
    await pool.deliver(Sender("a@x", "new"), MSG)
    assert await closed(made[0]) and made[1].alive
    with pytest.raises(LoginRefused):  # the old password no longer reuses anything
        await pool.deliver(Sender("a@x", "pa"), MSG)


async def test_dead_session_is_reopened(opens: list[str]) -> None:
    pool, made = make_pool(opens)
    await pool.deliver(Sender("a@x", "pa"), MSG)
    made[0].alive = False
    await pool.deliver(Sender("a@x", "pa"), MSG)
    assert len(made) == 2 and opens == ["a@x", "a@x"]


async def test_cap_closes_least_recently_used(opens: list[str]) -> None:
    pool, made = make_pool(opens, max_sessions=2)
    await pool.deliver(Sender("a@x", "pa"), MSG)
    await pool.deliver(Sender("b@x", "pb"), MSG)
    await pool.deliver(Sender("a@x", "pa"), MSG)  # b is now least recently used
    await pool.deliver(Sender("c@x", "pc"), MSG)
    assert await closed(made[1])
    assert [s.creds.jid for s in made if s.closed] == ["b@x"]
    assert pool.open_sessions == 2


async def test_cap_never_closes_a_busy_session(opens: list[str]) -> None:
    pool, made = make_pool(opens, max_sessions=1)
    await pool.deliver(Sender("a@x", "pa"), MSG)
    made[0].gate.clear()
    made[0].delivering.clear()
    busy = asyncio.ensure_future(pool.deliver(Sender("a@x", "pa"), MSG))
    await made[0].delivering.wait()
    with pytest.raises(XmppUnavailable) as exc:
        await pool.deliver(Sender("b@x", "pb"), MSG)
    assert exc.value.code == "session_limit"
    made[0].gate.set()
    await busy


async def test_idle_sessions_close(opens: list[str]) -> None:
    clock = ManualClock()
    pool, made = make_pool(opens, idle_timeout=60, clock=clock)
    await pool.deliver(Sender("a@x", "pa"), MSG)
    clock.advance(60)
    assert pool.close_idle() == 0  # idle for exactly the timeout: not yet
    clock.advance(0.1)
    assert pool.close_idle() == 1
    assert await closed(made[0]) and pool.open_sessions == 0
    await pool.stop()


async def test_a_session_in_use_is_reopened_after_the_idle_timeout(opens: list[str]) -> None:
    clock = ManualClock()
    pool, made = make_pool(opens, idle_timeout=60, clock=clock)
    for _ in range(4):  # used every 25 s: never idle, yet its password is checked again
        await pool.deliver(Sender("a@x", "pa"), MSG)
        assert pool.close_idle() == 0
        clock.advance(25)
    assert opens == ["a@x", "a@x"] and await closed(made[0])
    await pool.stop()
