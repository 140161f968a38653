"""The session pool with fake sessions: locking, password checks, caps, idleness."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from xmpp_post.errors import LoginRefused, XmppUnavailable
from xmpp_post.model import OutgoingMessage, Receipt, Sender
from xmpp_post.xmpp.pool import SessionPool

MSG = OutgoingMessage(to="bob@example.org", body="hi")


class FakeSession:
    """Stands in for the XMPP side: the 'server' knows one password per account."""

    passwords: ClassVar[dict[str, str]] = {}

    def __init__(self, creds: Sender, opens: list[str]) -> None:
        self.creds, self.opens = creds, opens
        self.alive = False
        self.in_flight = 0
        self.closed = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def open(self) -> None:
        await asyncio.sleep(0.01)
        self.opens.append(self.creds.jid)
        if self.passwords.get(self.creds.jid) != self.creds.password:
            raise LoginRefused("wrong")
        self.alive = True

    async def deliver(self, message: OutgoingMessage) -> Receipt:
        self.in_flight += 1
        await self.gate.wait()
        self.in_flight -= 1
        return Receipt("id", self.creds.jid, message.to, message.type)

    async def close(self, wait: float = 2.0) -> None:
        self.alive, self.closed = False, True


@pytest.fixture
def opens() -> list[str]:
    FakeSession.passwords = {"a@x": "pa", "b@x": "pb", "c@x": "pc"}
    return []


def make_pool(opens: list[str], **kwargs: float) -> tuple[SessionPool, list[FakeSession]]:
    made: list[FakeSession] = []

    def factory(creds: Sender) -> FakeSession:
        made.append(FakeSession(creds, opens))
        return made[-1]

    options = {"idle_timeout": 60.0, "max_sessions": 10, **kwargs}
    return SessionPool(factory, idle_timeout=options["idle_timeout"],  # type: ignore[arg-type]
                       max_sessions=int(options["max_sessions"])), made


async def test_concurrent_first_requests_open_one_session(opens: list[str]) -> None:
    pool, made = make_pool(opens)
    await asyncio.gather(*(pool.deliver(Sender("a@x", "pa"), MSG) for _ in range(50)))
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
    await asyncio.sleep(0)
    assert made[0].closed and made[1].alive
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
    await asyncio.sleep(0)
    assert [s.creds.jid for s in made if s.closed] == ["b@x"]
    assert pool.open_sessions == 2


async def test_cap_never_closes_a_busy_session(opens: list[str]) -> None:
    pool, made = make_pool(opens, max_sessions=1)
    await pool.deliver(Sender("a@x", "pa"), MSG)
    made[0].gate.clear()
    busy = asyncio.ensure_future(pool.deliver(Sender("a@x", "pa"), MSG))
    await asyncio.sleep(0.01)
    with pytest.raises(XmppUnavailable) as exc:
        await pool.deliver(Sender("b@x", "pb"), MSG)
    assert exc.value.code == "session_limit"
    made[0].gate.set()
    await busy


async def test_idle_sessions_close(opens: list[str]) -> None:
    pool, made = make_pool(opens, idle_timeout=0.05)
    await pool.deliver(Sender("a@x", "pa"), MSG)
    await asyncio.sleep(0.1)
    assert pool.close_idle() == 1
    await asyncio.sleep(0)
    assert made[0].closed and pool.open_sessions == 0
    await pool.stop()
