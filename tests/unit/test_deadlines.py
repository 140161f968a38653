"""``deadlines.Deadlines``: like ``asyncio.timeout`` for many blocks of one duration."""

from __future__ import annotations

import asyncio

import pytest

from xmpp_post.deadlines import Deadlines

pytestmark = pytest.mark.unit


async def test_a_block_past_its_deadline_raises_timeout_error() -> None:
    deadlines = Deadlines(0.05)
    with pytest.raises(TimeoutError):
        async with deadlines.within():
            await asyncio.Event().wait()


async def test_blocks_that_finish_in_time_are_untouched_and_forgotten() -> None:
    deadlines = Deadlines(30)
    for _ in range(3):
        async with deadlines.within():
            await asyncio.sleep(0)
    assert deadlines._open == {}


async def test_only_the_blocks_past_their_deadline_expire() -> None:
    deadlines = Deadlines(0.1)
    release = asyncio.Event()
    outcomes: list[str] = []

    async def block(wait: asyncio.Event) -> None:
        try:
            async with deadlines.within():
                await wait.wait()
            outcomes.append("done")
        except TimeoutError:
            outcomes.append("timeout")

    stuck = asyncio.create_task(block(asyncio.Event()))
    quick = asyncio.create_task(block(release))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(stuck, quick)
    assert sorted(outcomes) == ["done", "timeout"]


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
