"""Handing a bot from one instance to another, with nothing started: the webhook-id
derived from the server's stanza-id (the same on every instance), and a runner with a
``Handover`` kept in memory here (the Redis one, and its fencing, are proven against a
real Redis in tests/e2e/test_bot_handover.py)."""

from __future__ import annotations

import re

from tests.helpers.bots_core import BOT, MESSAGE, ScriptedHttp, answer, next_item, runner_for
from xmpp_post.bots import signing
from xmpp_post.bots.handover import point
from xmpp_post.bots.runner import BotRunner, decode
from xmpp_post.incoming import ArchivePoint, Incoming
from xmpp_post.metrics import Metrics

SINCE = "2026-12-07T10:00:00Z"
ROOM_MESSAGE = Incoming(id="room-7", type="groupchat", sender="ops@conf.example.org/carol",
                        to="bot@example.org/x", body="bot: hi", room="ops@conf.example.org",
                        nick="carol")


class Shared:
    """A ``Handover`` in memory, with the Redis one's rules: the cursor moves only for
    the instance that holds the lease (``holder``); anyone may record a handled id."""

    def __init__(self) -> None:
        self.holder = "a"
        self.cursor_value: str | None = None
        self.done: set[str] = set()
        self.failing = False

    def of(self, owner: str) -> Shared.View:
        return Shared.View(self, owner)

    class View:
        def __init__(self, shared: Shared, owner: str) -> None:
            self.shared, self.owner = shared, owner

        async def cursor(self) -> str | None:
            return self.shared.cursor_value

        async def anchor(self, start: str) -> str | None:
            if self.shared.holder == self.owner and self.shared.cursor_value is None:
                self.shared.cursor_value = start
            return self.shared.cursor_value

        async def handled(self, webhook_id: str) -> bool:
            if self.shared.failing:
                raise ConnectionError("Redis is down")
            return webhook_id in self.shared.done

        async def keep(self) -> bool:
            return self.shared.holder == self.owner

        async def record(self, webhook_id: str, archive_id: str | None) -> bool:
            if self.shared.failing:
                raise ConnectionError("Redis is down")
            self.shared.done.add(webhook_id)
            if archive_id and self.shared.holder == self.owner:
                self.shared.cursor_value = "id:" + archive_id
                return True
            return False


def test_cursors_name_an_archive_id_or_a_time() -> None:
    assert point("id:a:b") == ArchivePoint(after="a:b")
    assert point(f"since:{SINCE}") == ArchivePoint(since=SINCE)
    assert point("id:") is None and point("other:x") is None and point("x") is None


def test_a_derived_webhook_id_is_stable_and_names_bot_scope_and_stanza_id() -> None:
    one = signing.message_webhook_id("b", "bot@example.org", "sid-1")
    assert one == signing.message_webhook_id("b", "bot@example.org", "sid-1")
    assert re.fullmatch(r"msg_[a-z2-7]{24}", one)
    others = {signing.message_webhook_id(*parts) for parts in [
        ("c", "bot@example.org", "sid-1"), ("b", "ops@conf.example.org", "sid-1"),
        ("b", "bot@example.org", "sid-2"), ("bb", "ot@example.org", "sid-1")]}
    assert len(others) == 4 and one not in others


async def test_two_instances_queue_one_message_under_one_webhook_id() -> None:
    first, _ = runner_for(ScriptedHttp([]))
    second, _ = runner_for(ScriptedHttp([]))  # its own state, as another instance's
    ids = []
    for runner in (first, second):
        await runner.accept(MESSAGE, "sid-1")
        ids.append(decode((await next_item(runner)).body)[0])
    assert ids[0] == ids[1] == signing.message_webhook_id("b", BOT.account, "sid-1")
    room, _ = runner_for(ScriptedHttp([]))
    await room.accept(ROOM_MESSAGE, None, "room-7")
    assert decode((await next_item(room)).body)[0] == signing.message_webhook_id(
        "b", "ops@conf.example.org", "room-7")


async def test_without_a_stanza_id_each_queueing_is_a_new_id() -> None:
    runner, _ = runner_for(ScriptedHttp([]))
    await runner.accept(MESSAGE)
    await runner.accept(MESSAGE)
    items = await runner._queues.peek(runner.queue, 2)
    assert len({decode(item.body)[0] for item in items}) == 2


def with_handover(shared: Shared, owner: str, http: ScriptedHttp,
                  now: list[float] | None = None,
                  metrics: Metrics | None = None) -> BotRunner:
    runner, _ = runner_for(http, now, metrics)
    runner.handover = shared.of(owner)
    return runner


async def test_the_holder_moves_the_shared_cursor_as_it_handles() -> None:
    shared = Shared()
    runner = with_handover(shared, "a", ScriptedHttp([answer(204), answer(404)]))
    assert await runner.read_from(SINCE) == ArchivePoint(since=SINCE)  # nothing handled
    assert shared.cursor_value == f"since:{SINCE}"
    await runner.accept(MESSAGE, "sid-1")
    await runner.accept(MESSAGE, "sid-2")
    for _ in range(2):
        item = await next_item(runner)
        await runner.handle(item)
        await runner._queues.ack(runner.queue, item.id)
    assert shared.cursor_value == "id:sid-2"  # delivered, then rejected: both handled
    assert await runner.read_from(SINCE) == ArchivePoint(after="sid-2")
    assert len(shared.done) == 2


async def test_a_gateway_that_ran_alone_starts_the_cursor_at_its_own() -> None:
    shared = Shared()
    alone, _ = runner_for(ScriptedHttp([]))
    await alone.accept(MESSAGE, "sid-7")  # before redis_url: its own archive id
    alone.handover = shared.of("a")
    assert await alone.read_from(SINCE) == ArchivePoint(after="sid-7")
    assert shared.cursor_value == "id:sid-7"
    plain, _ = runner_for(ScriptedHttp([]))  # without Redis: its own, or nothing
    assert await plain.read_from(SINCE) is None
    await plain.accept(MESSAGE, "sid-8")
    assert await plain.read_from(SINCE) == ArchivePoint(after="sid-8")


async def test_an_instance_without_the_lease_records_but_cannot_move_the_cursor() -> None:
    shared = Shared()
    shared.cursor_value = "id:sid-5"
    shared.holder = "b"
    stale = with_handover(shared, "a", ScriptedHttp([answer(204)]))
    assert await stale.read_from(SINCE) == ArchivePoint(after="sid-5")
    await stale.accept(MESSAGE, "sid-3")
    assert await stale.handle(await next_item(stale)) == "delivered"
    assert shared.cursor_value == "id:sid-5"
    assert signing.message_webhook_id("b", BOT.account, "sid-3") in shared.done


async def test_an_item_handled_on_another_instance_is_dropped_without_a_try() -> None:
    shared = Shared()
    metrics = Metrics()
    http = ScriptedHttp([])
    runner = with_handover(shared, "a", http, metrics=metrics)
    await runner.accept(MESSAGE, "sid-1")
    shared.done.add(signing.message_webhook_id("b", BOT.account, "sid-1"))
    assert await runner.handle(await next_item(runner)) == "handled_elsewhere"
    assert http.posts == []
    assert metrics.bot_skipped.labels("b", "handled_elsewhere")._value.get() == 1
    assert shared.cursor_value is None  # an older item never moves the cursor back


async def test_an_item_older_than_retry_for_expires_without_a_try() -> None:
    shared = Shared()
    now = [0.0]
    http = ScriptedHttp([])
    runner = with_handover(shared, "a", http, now)
    await runner.accept(MESSAGE, "sid-1")
    item = await next_item(runner)
    now[0] = item.pushed + BOT.retry_for + 1
    assert await runner.handle(item) == "expired"
    assert http.posts == [] and shared.cursor_value == "id:sid-1"


async def test_when_redis_fails_the_item_is_delivered_under_its_own_id() -> None:
    shared = Shared()
    shared.failing = True
    http = ScriptedHttp([answer(204)])
    runner = with_handover(shared, "a", http)
    await runner.accept(MESSAGE, "sid-1")
    assert await runner.handle(await next_item(runner)) == "delivered"
    assert http.posts[0]["headers"]["webhook-id"] == signing.message_webhook_id(
        "b", BOT.account, "sid-1")
