"""The bots' core with nothing started: Standard Webhooks signing (the specification's
published example), the delivery JSON and queue items, the answer's meaning, the retry
policy, and a runner driven against a scripted HTTP client and memory state."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from tests.helpers.bots_core import (
    BOT,
    MESSAGE,
    Answer,
    ScriptedHttp,
    answer,
    next_item,
    runner_for,
)
from xmpp_post.bots import signing
from xmpp_post.bots.answers import (
    Reply,
    RetryPolicy,
    http_date,
    parse_reply,
    retry_after,
    verdict,
)
from xmpp_post.bots.runner import decode, delivery_body, encode
from xmpp_post.incoming import Incoming
from xmpp_post.metrics import Metrics
from xmpp_post.state.memory_lasting import MemoryQueues
from xmpp_post.state.sealed import SealedQueues


def test_the_signature_is_the_specifications_example() -> None:
    # standardwebhooks.com's example: this secret, id, timestamp and payload.
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert signing.signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                             b'{"test": 2432232314}') == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_headers_of_a_try() -> None:
    headers = signing.headers(b"k" * 24, "msg_1", 1700000000, b"{}")
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["User-Agent"].startswith("xmpp-post/")
    assert signing.new_webhook_id() != signing.new_webhook_id()


def test_the_delivery_json_has_every_field_and_never_the_real_jid() -> None:
    sent = json.loads(delivery_body(MESSAGE))
    assert sent == {"id": "sid-1", "type": "chat", "from": "alice@example.org/phone",
                    "to": "bot@example.org/x", "body": "hello", "subject": None,
                    "thread": "t", "room": None, "nick": None,
                    "reply_to": {"id": "m0", "to": "bot@example.org"},
                    "oob": ["https://e.org/f"], "time": "2026-12-07T10:00:00Z",
                    "encrypted": False}


def test_a_queue_item_keeps_the_whole_message_and_its_webhook_id() -> None:
    assert decode(encode(MESSAGE, "msg_x")) == ("msg_x", None, MESSAGE)
    assert decode(encode(MESSAGE, "msg_x", "sid-1")) == ("msg_x", "sid-1", MESSAGE)
    sealed = replace(MESSAGE, encrypted=True)  # its reply is encrypted, after a restart too
    assert decode(encode(sealed, "msg_y")) == ("msg_y", None, sealed)


@pytest.mark.parametrize(("status", "meaning"), [
    (200, "delivered"), (204, "delivered"), (299, "delivered"), (500, "retry"),
    (503, "retry"), (408, "retry"), (429, "retry"), (400, "rejected"), (401, "rejected"),
    (404, "rejected"), (410, "rejected"), (301, "rejected")])
def test_verdicts(status: int, meaning: str) -> None:
    assert verdict(status) == meaning


@pytest.mark.parametrize(("status", "content_type", "body", "reply"), [
    (200, "text/plain", b"pong", Reply("pong")),
    (200, "text/plain; charset=iso-8859-1", "caf\u00e9".encode("latin-1"), Reply("caf\u00e9")),
    (200, "application/json", b'{"body": "b", "subject": "s", "thread": "t"}',
     Reply("b", "s", "t")),
    (201, "application/json; charset=utf-8", b'{"body": "only"}', Reply("only")),
    (200, "text/plain", b"a\x00b\x1bc", Reply("abc")),  # what XML cannot carry is left out
    (204, "text/plain", b"", None),
    (200, "text/plain", b"", None),
    (200, "text/plain", b"  \n", None),
    (200, "application/json", b'{"subject": "no body"}', None),
    (200, "application/json", b'{"body": 3}', None),
    (200, "application/json", b"[1, 2]", None),
    (200, "application/json", b"{not json", None),
    (200, "text/html", b"<p>hi</p>", None),
    (200, "text/plain; charset=nope", b"x", None),
    (200, "text/plain; charset=punycode", b"x" * 1000, None),  # slow to decode: refused
    (200, "application/json", b"[" * 60_000, None),  # nested too deep for json.loads
    (500, "text/plain", b"error page", None),
])
def test_the_answer_is_the_reply(status: int, content_type: str, body: bytes,
                                 reply: Reply | None) -> None:
    assert parse_reply(status, content_type, body) == reply


def test_retry_after_as_seconds_or_a_date() -> None:
    assert retry_after("120", 1000.0) == 120.0
    assert retry_after(http_date(1030.0), 1000.0) == 30.0
    assert retry_after(http_date(900.0), 1000.0) == 0.0
    assert retry_after("soon", 1000.0) is None and retry_after(None, 1000.0) is None
    assert retry_after("99999999999", 0.0) == 24 * 3600.0


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(retry_for=3600, first=1, cap=60)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 7, 8, 100)] == [1, 2, 4, 8, 60, 60, 60]


def test_retry_after_is_honoured_and_retry_for_ends_the_tries() -> None:
    policy = RetryPolicy(retry_for=100, first=1, cap=60)
    assert policy.next_wait(1, arrived=0, now=10) == 1
    assert policy.next_wait(1, arrived=0, now=10, asked=30) == 30  # longer than backoff
    assert policy.next_wait(5, arrived=0, now=10, asked=2) == 16  # shorter: backoff wins
    assert policy.next_wait(7, arrived=0, now=90) == 10  # one last try as time runs out
    assert policy.next_wait(1, arrived=0, now=90, asked=20) is None  # asked beyond
    assert policy.next_wait(1, arrived=0, now=100) is None


async def test_failures_are_retried_with_one_webhook_id_then_the_reply_is_sent() -> None:
    http = ScriptedHttp([answer(503), OSError("refused"),
                         Answer(429, b"", "", {"Retry-After": "0"}),
                         answer(200, b"done", "text/plain")])
    metrics = Metrics()
    runner, link = runner_for(http, metrics=metrics)
    await runner.accept(MESSAGE, "sid-1")
    assert runner.waiting == 1
    assert await runner.handle(await next_item(runner)) == "delivered"
    assert len({post["headers"]["webhook-id"] for post in http.posts}) == 1
    assert json.loads(http.posts[0]["data"])["body"] == "hello"
    assert link.replies == [("sid-1", "done", None, None)]
    assert metrics.bot_deliveries.labels("b", "delivered")._value.get() == 1


async def test_a_4xx_is_dropped_at_once_and_counted() -> None:
    runner, link = runner_for(ScriptedHttp([answer(404)]))
    await runner.accept(MESSAGE)
    assert await runner.handle(await next_item(runner)) == "rejected"
    assert link.replies == []


async def test_retry_for_counts_from_the_messages_arrival() -> None:
    now = [1000.0]
    runner, _ = runner_for(ScriptedHttp([answer(500)]), now)
    await runner.accept(MESSAGE)
    item = await next_item(runner)
    now[0] = item.pushed + BOT.retry_for + 1
    assert await runner.handle(item) == "expired"


async def test_a_stanza_id_is_queued_once() -> None:
    runner, _ = runner_for(ScriptedHttp([]))
    await runner.accept(MESSAGE, "sid-1")
    await runner.accept(MESSAGE, "sid-1")  # the offline store and the archive
    await runner.accept(MESSAGE)  # without a stanza-id: nothing to know it by
    assert runner.waiting == 2
    assert await runner.last_archive_id() == "sid-1"


async def test_an_answerer_answers_before_the_webhook() -> None:
    class Actions:
        async def answer(self, message: Incoming) -> str | None:
            return "silenced" if message.body.startswith("silence") else None

    runner, link = runner_for(ScriptedHttp([answer(204)]))
    runner.answerer = Actions()
    await runner.accept(Incoming(id="a", type="chat", sender="x@e/r", to="b@e", body="silence 2h"))
    assert await runner.handle(await next_item(runner)) == "answered"
    assert link.replies == [("a", "silenced", None, None)]
    await runner._queues.ack(runner.queue, (await next_item(runner)).id)
    await runner.accept(MESSAGE)
    assert await runner.handle(await next_item(runner)) == "delivered"


async def test_a_full_queue_drops_and_counts() -> None:
    metrics = Metrics()
    runner, _ = runner_for(ScriptedHttp([]), metrics=metrics)
    runner._queues = MemoryQueues(max_items=1)
    await runner.accept(MESSAGE)
    await runner.accept(MESSAGE)
    assert runner.waiting == 1
    assert metrics.bot_skipped.labels("b", "queue_full")._value.get() == 1


async def test_a_sealed_queue_holds_no_text_and_opens_only_with_its_secret() -> None:
    inner = MemoryQueues()
    sealed = SealedQueues(inner, b"s" * 32, "bot queues")
    await sealed.push("bot:b", b'{"body":"secret text"}')
    [stored] = await inner.peek("bot:b")
    assert b"secret text" not in stored.body
    assert [i.body for i in await sealed.peek("bot:b")] == [b'{"body":"secret text"}']
    other = SealedQueues(inner, b"t" * 32, "bot queues")
    assert [i.body for i in await other.peek("bot:b")] == [b""]  # unreadable, never garbage
    await inner.push("bot:c", stored.body)  # moved to another queue: does not open
    assert [i.body for i in await sealed.peek("bot:c")] == [b""]
    await inner.push("bot:d", b'{"body":"from before"}')  # written before sealing began
    assert [i.body for i in await sealed.peek("bot:d")] == [b'{"body":"from before"}']
    assert await sealed.length("bot:b") == 1 and await sealed.ack("bot:b", stored.id)
