"""``deadlines.Deadlines``: like ``asyncio.timeout`` for many blocks of one duration.
The event loop's clock is a ``ManualClock`` (``loop_clock``): its timers fire when a test
moves it."""

from __future__ import annotations

import asyncio

import pytest

from xmpp_post.deadlines import Deadlines
from xmpp_post.testing import ManualClock

pytestmark = pytest.mark.unit


async def test_a_block_past_its_deadline_raises_timeout_error(loop_clock: ManualClock) -> None:
    deadlines = Deadlines(30)
    with pytest.raises(TimeoutError):
        async with deadlines.within():
            loop_clock.advance(30.001)
            await asyncio.Event().wait()


async def test_blocks_that_finish_in_time_are_untouched_and_forgotten() -> None:
    deadlines = Deadlines(30)
    for _ in range(3):
        async with deadlines.within():
            await asyncio.sleep(0)
    assert deadlines._open == {}


async def test_only_the_blocks_past_their_deadline_expire(loop_clock: ManualClock) -> None:
    deadlines = Deadlines(30)
    entered = asyncio.Event()
    outcomes: dict[str, str] = {}

    async def block(name: str, wait: asyncio.Event) -> None:
        try:
            async with deadlines.within():
                entered.set()
                await wait.wait()
            outcomes[name] = "done"
        except TimeoutError:
            outcomes[name] = "timeout"

    first_release, second_release = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(block("first", first_release))
    await entered.wait()
    entered.clear()
    loop_clock.advance(10)
    second = asyncio.create_task(block("second", second_release))
    await entered.wait()
    loop_clock.advance(20.001)  # past the first block's deadline, not the second's
    await asyncio.wait_for(first, 5)
    second_release.set()
    await second
    assert outcomes == {"first": "timeout", "second": "done"}


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    deadlines = Deadlines(30)
    entered = asyncio.Event()

    async def block() -> None:
        async with deadlines.within():
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(block())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines._open == {}
