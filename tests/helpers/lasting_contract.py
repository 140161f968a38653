"""The contract of the lasting-state protocols (``state.lasting``: ``KeyValue`` and
``Queues``). A test module binds it to an implementation with the ``lasting_harness``
fixture; see ``test_state_memory.py`` and ``test_state_sqlite.py``."""

from __future__ import annotations

from typing import Protocol

import pytest

from xmpp_post.errors import Overloaded
from xmpp_post.state.lasting import KeyValue, Queues


class LastingHarness(Protocol):
    def kv(self) -> KeyValue: ...

    def queues(self, max_items: int = 1000) -> Queues: ...

    async def advance(self, seconds: float) -> None:
        """Let time pass for the implementation (a fake clock)."""
        ...


class LastingContract:
    async def test_values_are_kept_per_namespace(self, lasting_harness: LastingHarness) -> None:
        kv = lasting_harness.kv()
        assert await kv.get("omemo", "identity") is None
        await kv.put("omemo", "identity", b"\x00key")
        await kv.put("bots", "identity", b"other")
        assert await kv.get("omemo", "identity") == b"\x00key"
        assert await kv.get("bots", "identity") == b"other"
        await kv.put("omemo", "identity", b"new")  # replaced
        assert await kv.get("omemo", "identity") == b"new"
        assert await kv.delete("omemo", "identity") is True
        assert await kv.delete("omemo", "identity") is False
        assert await kv.get("omemo", "identity") is None
        assert await kv.get("bots", "identity") == b"other"

    async def test_keys_by_prefix_sorted_and_bounded(self, lasting_harness: LastingHarness) -> None:
        kv = lasting_harness.kv()
        for name in ("dev/b@x/2", "dev/a@x/9", "dev/a@x/1", "session/a@x", "dev/ä@x/1"):
            await kv.put("omemo", name, b"v")
        await kv.put("other", "dev/z@x/1", b"v")
        assert await kv.keys("omemo", "dev/a@x/") == ["dev/a@x/1", "dev/a@x/9"]
        assert await kv.keys("omemo", "dev/") == ["dev/a@x/1", "dev/a@x/9", "dev/b@x/2",
                                                  "dev/ä@x/1"]
        assert await kv.keys("omemo") == ["dev/a@x/1", "dev/a@x/9", "dev/b@x/2",
                                          "dev/ä@x/1", "session/a@x"]
        assert await kv.keys("omemo", limit=2) == ["dev/a@x/1", "dev/a@x/9"]
        assert await kv.keys("nothing") == []

    async def test_values_expire(self, lasting_harness: LastingHarness) -> None:
        kv = lasting_harness.kv()
        await kv.put("alerts", "msg-1", b"fingerprint", ttl=10)
        await kv.put("alerts", "msg-2", b"kept")
        await lasting_harness.advance(5)
        assert await kv.get("alerts", "msg-1") == b"fingerprint"
        await lasting_harness.advance(6)
        assert await kv.get("alerts", "msg-1") is None
        assert await kv.keys("alerts") == ["msg-2"]
        assert await kv.get("alerts", "msg-2") == b"kept"

    async def test_a_bad_name_is_a_bug_not_stored(self, lasting_harness: LastingHarness) -> None:
        kv = lasting_harness.kv()
        with pytest.raises(ValueError):
            await kv.put("", "k", b"v")
        with pytest.raises(ValueError):
            await kv.put("ns", "k" * 201, b"v")

    async def test_queue_is_first_in_first_out_until_acked(
            self, lasting_harness: LastingHarness) -> None:
        queues = lasting_harness.queues()
        assert await queues.length("bot:a") == 0
        assert await queues.oldest_age("bot:a") is None
        assert await queues.peek("bot:a") == []
        first = await queues.push("bot:a", b"one")
        await lasting_harness.advance(3)
        second = await queues.push("bot:a", b"two")
        await queues.push("bot:b", b"elsewhere")
        assert second > first
        assert [i.body for i in await queues.peek("bot:a", 5)] == [b"one", b"two"]
        assert [i.body for i in await queues.peek("bot:a")] == [b"one"]  # peek leaves them
        assert await queues.length("bot:a") == 2
        age = await queues.oldest_age("bot:a")
        assert age is not None and 3 <= age < 4
        assert await queues.ack("bot:a", first) is True
        assert await queues.ack("bot:a", first) is False  # once
        assert await queues.ack("bot:b", second) is False  # not that queue's
        assert [i.id for i in await queues.peek("bot:a", 5)] == [second]
        age = await queues.oldest_age("bot:a")
        assert age is not None and age < 1
        assert await queues.length("bot:b") == 1

    async def test_an_item_acked_out_of_order(self, lasting_harness: LastingHarness) -> None:
        queues = lasting_harness.queues()
        ids = [await queues.push("q", f"{n}".encode()) for n in range(4)]
        assert await queues.ack("q", ids[2]) is True
        assert [i.body for i in await queues.peek("q", 10)] == [b"0", b"1", b"3"]
        assert await queues.length("q") == 3

    async def test_a_full_queue_refuses_with_retry_after(
            self, lasting_harness: LastingHarness) -> None:
        queues = lasting_harness.queues(max_items=2)
        await queues.push("q", b"1")
        await queues.push("q", b"2")
        with pytest.raises(Overloaded) as caught:
            await queues.push("q", b"3")
        assert caught.value.code == "queue_full" and caught.value.retry_after is not None
        await queues.push("other", b"1")  # per queue
        (oldest,) = await queues.peek("q")
        await queues.ack("q", oldest.id)
        await queues.push("q", b"3")
