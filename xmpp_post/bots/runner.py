"""One bot's deliveries: a lasting queue, and the worker that empties it in order.

``accept(message, archive_id, stanza_id)`` (called by the XMPP side for each message it
receives, in order, before anything about it is acknowledged) pushes it to the bot's
queue in the instance's lasting state, unless its stanza-id was queued already (the
server's offline store and its archive may both hold a message), under a ``webhook-id``
derived from the server's stanza-id where there is one (the same on any instance), and
remembers ``archive_id``, the stanza-id the account's archive (XEP-0313) gave it, so
that after a restart the archive is read from there (``last_archive_id``).

With several instances, a ``handover`` (``bots.handover``) replaces that last point:
the archive is read from the cursor the instances share (``read_from``), each item
handled is recorded there (moving the cursor while this instance holds the lease), and
an item another instance handled already is dropped (skipped, ``handled_elsewhere``). An item that
waited beyond ``retry_for`` (in the queue of an instance that did not run the bot
meanwhile) expires without a try.

``run()`` takes the oldest item, lets the ``answerer`` (the alert actions) answer it, or
POSTs it to the webhook, signed, with the same ``webhook-id`` on every try; retries per
``answers.RetryPolicy``; sends the answer's reply through ``link`` (the XMPP session);
and only then removes the item. A crash at any point delivers the item again (at least
once). Outcomes are counted per bot: ``delivered``, ``answered`` (by the answerer),
``rejected`` (4xx), ``expired`` (retry_for passed), and skipped messages by reason
(``encrypted``: OMEMO, the bot has it off; ``undecryptable``: OMEMO it cannot read;
``queue_full``: the queue holds its 10,000 items already; ``handled_elsewhere``). A
reply not sent is counted by reason: ``omemo`` (the reply to an encrypted message
could not be encrypted, and is not sent in clear), ``xmpp`` (any other failure).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp

from xmpp_post import logs
from xmpp_post.bots import signing
from xmpp_post.bots.answering import Answerer
from xmpp_post.bots.answers import MAX_REPLY, Reply, RetryPolicy, parse_reply, retry_after, verdict
from xmpp_post.bots.handover import Handover, point
from xmpp_post.config.bots import Bot, redacted_url
from xmpp_post.errors import OmemoUnavailable, Overloaded, PayloadTooLarge
from xmpp_post.incoming import ArchivePoint, Incoming, ReplyTo
from xmpp_post.metrics import Metrics
from xmpp_post.state.lasting import Lasting, QueueItem

log = logging.getLogger(__name__)

SEEN_FOR = 7 * 24 * 3600.0  # seconds a queued stanza-id is remembered (duplicates)
REQUEST_TIMEOUT = 30.0  # seconds one try may take
ARCHIVE = "bot-archive"  # KeyValue namespace: bot name -> last archive stanza-id queued


class BotLink(Protocol):
    """The bot's XMPP session, as the runner sees it."""

    async def send_reply(self, message: Incoming, body: str, subject: str | None = None,
                         thread: str | None = None) -> None:
        ...


def encode(message: Incoming, webhook_id: str, archive_id: str | None = None) -> bytes:
    """A queue item: the delivery's id, the message's archive id (if any) and the whole
    message (``real_jid`` included)."""
    fields = message.as_json()
    fields["real_jid"] = message.real_jid
    item: dict[str, Any] = {"webhook_id": webhook_id, "message": fields}
    if archive_id:
        item["archive_id"] = archive_id
    return json.dumps(item, separators=(",", ":")).encode()


def decode(data: bytes) -> tuple[str, str | None, Incoming]:
    item = json.loads(data)
    m: dict[str, Any] = item["message"]
    reply_to = m.get("reply_to")
    archive_id = item.get("archive_id")
    return str(item["webhook_id"]), str(archive_id) if archive_id else None, Incoming(
        id=m["id"], type=m["type"], sender=m["from"], to=m["to"], body=m["body"],
        subject=m.get("subject"), thread=m.get("thread"), room=m.get("room"),
        nick=m.get("nick"), real_jid=m.get("real_jid"),
        reply_to=ReplyTo(reply_to["id"], reply_to.get("to")) if reply_to else None,
        oob=tuple(m.get("oob") or ()), time=m.get("time"),
        encrypted=bool(m.get("encrypted")))


def delivery_body(message: Incoming) -> bytes:
    """The JSON POSTed to the webhook (``Incoming.as_json``)."""
    return json.dumps(message.as_json(), ensure_ascii=False, separators=(",", ":")).encode()


class BotRunner:
    """See the module docstring. ``link`` is set once the bot's session exists."""

    def __init__(self, bot: Bot, lasting: Lasting, http: aiohttp.ClientSession, *,
                 metrics: Metrics | None = None, answerer: Answerer | None = None,
                 policy: RetryPolicy | None = None, handover: Handover | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.bot = bot
        self.queue = f"bot:{bot.name}"
        self._kv, self._queues = lasting.kv, lasting.queues
        self._http = http
        self._metrics = metrics
        self.answerer = answerer
        self.handover = handover
        self.link: BotLink | None = None
        self.policy = policy or RetryPolicy(bot.retry_for)
        self._clock = clock
        self._wake = asyncio.Event()
        self._url = redacted_url(bot.url)
        self.waiting = 0  # items in the queue, as of the last change
        self.oldest: float | None = None  # when the oldest waiting item was pushed
        if metrics is not None:
            metrics.track_bot(bot.name, lambda: self.waiting, self._oldest_age)

    def _oldest_age(self) -> float:
        return 0.0 if self.oldest is None else max(0.0, self._clock() - self.oldest)

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.bot_deliveries.labels(self.bot.name, outcome).inc()

    def count_skipped(self, reason: str) -> None:
        """A message the bot received but does not deliver (see the module docstring)."""
        if self._metrics is not None:
            self._metrics.bot_skipped.labels(self.bot.name, reason).inc()

    # the XMPP side's callbacks ------------------------------------------------------------

    def webhook_id(self, message: Incoming, stanza_id: str | None) -> str:
        """The delivery id of ``message``: derived from the server's stanza-id (its
        ``id``) where it has one, so every instance uses the same; else a fresh one."""
        if not stanza_id:
            return signing.new_webhook_id()
        scope = message.room if message.type == "groupchat" and message.room else self.bot.account
        return signing.message_webhook_id(self.bot.name, scope, stanza_id)

    async def accept(self, message: Incoming, archive_id: str | None = None,
                     stanza_id: str | None = None) -> None:
        """Queue ``message`` (once per stanza-id), durably, before returning.
        ``stanza_id``: the server's stanza-id ``message.id`` is (default ``archive_id``)."""
        seen = "seen:" + (archive_id or "")[:180]
        if archive_id and await self._kv.get(self.queue, seen) is not None:
            return
        webhook_id = self.webhook_id(message, stanza_id or archive_id)
        try:
            await self._queues.push(self.queue, encode(message, webhook_id, archive_id))
        except Overloaded:
            log.warning("bot %s: its queue is full; a message was dropped", self.bot.name)
            self.count_skipped("queue_full")
            return
        if archive_id:
            await self._kv.put(self.queue, seen, b"1", ttl=SEEN_FOR)
            await self._kv.put(ARCHIVE, self.bot.name, archive_id.encode())
        await self._refresh()
        self._wake.set()

    async def last_archive_id(self) -> str | None:
        """The last archive id this instance queued (the archive is read after it)."""
        value = await self._kv.get(ARCHIVE, self.bot.name)
        return value.decode() if value is not None else None

    async def read_from(self, since: str) -> ArchivePoint | None:
        """With a ``handover``: where to read the archive from, the cursor the
        instances share; with none yet, this instance's last archive id, else the time
        ``since`` (when its session came online), becomes it."""
        if self.handover is None:
            after = await self.last_archive_id()
            return ArchivePoint(after=after) if after else None
        cursor = await self.handover.cursor()
        if cursor is None:
            local = await self.last_archive_id()
            cursor = await self.handover.anchor(f"id:{local}" if local else f"since:{since}")
        return point(cursor) if cursor is not None else None

    # the worker ---------------------------------------------------------------------------

    async def _refresh(self) -> None:
        self.waiting = await self._queues.length(self.queue)
        oldest = await self._queues.peek(self.queue, 1)
        self.oldest = oldest[0].pushed if oldest else None

    async def run(self) -> None:
        """Deliver the queue's items, oldest first, until cancelled."""
        await self._refresh()
        while True:
            items = await self._queues.peek(self.queue, 1)
            if not items:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self.handle(items[0])
            await self._queues.ack(self.queue, items[0].id)
            await self._refresh()

    async def handle(self, item: QueueItem) -> str:
        """Deliver one item, unless another instance handled it (``handover``) or it
        waited beyond ``retry_for`` (an instance's queue left while another ran the
        bot); its outcome, recorded as handled for the other instances."""
        try:
            webhook_id, archive_id, message = decode(item.body)
        except (ValueError, KeyError, TypeError):
            log.error("bot %s: an unreadable queue item was dropped", self.bot.name)
            self._count("unreadable")
            return "unreadable"
        if await self._handled_elsewhere(webhook_id):
            self.count_skipped("handled_elsewhere")
            return "handled_elsewhere"
        if self._clock() - item.pushed > self.bot.retry_for:
            logs.event(log, "bot delivery expired", logging.WARNING, bot=self.bot.name,
                       url=self._url, id=webhook_id, why="waited", tries=0)
            outcome = "expired"
            self._count(outcome)
        else:
            outcome = await self._handle(webhook_id, message, item.pushed)
        await self._record(webhook_id, archive_id)
        return outcome

    async def _handled_elsewhere(self, webhook_id: str) -> bool:
        if self.handover is None:
            return False
        try:
            return await self.handover.handled(webhook_id)
        except Exception as exc:  # delivered then: a duplicate carries the same id
            log.warning("bot %s: Redis failed (%r); delivering %s", self.bot.name, exc,
                        webhook_id)
            return False

    async def _record(self, webhook_id: str, archive_id: str | None) -> None:
        if self.handover is None:
            return
        try:
            await self.handover.record(webhook_id, archive_id)
        except Exception as exc:  # the next holder may deliver it again, same id
            log.warning("bot %s: Redis failed (%r); %s is not recorded as handled",
                        self.bot.name, exc, webhook_id)

    async def _handle(self, webhook_id: str, message: Incoming, pushed: float) -> str:
        if self.answerer is not None:
            try:
                text = await self.answerer.answer(message)
            except Exception:
                log.exception("bot %s: the alert actions failed; the message goes to the "
                              "webhook", self.bot.name)
                text = None
            if text is not None:
                self._count("answered")
                await self._reply(message, Reply(text))
                return "answered"
        outcome, reply = await self._deliver(webhook_id, message, pushed)
        self._count(outcome)
        if reply is not None:
            await self._reply(message, reply)
        return outcome

    async def _deliver(self, webhook_id: str, message: Incoming,
                       arrived: float) -> tuple[str, Reply | None]:
        body = delivery_body(message)
        attempt = 0
        while True:
            attempt += 1
            asked: float | None = None
            try:
                status, content_type, answer, asked = await self._post(webhook_id, body)
                result = verdict(status)
                why = f"HTTP {status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                result, why = "retry", type(exc).__name__
            if result == "delivered":
                return result, parse_reply(status, content_type, answer)
            if result == "rejected":
                logs.event(log, "bot delivery rejected", logging.WARNING, bot=self.bot.name,
                           url=self._url, id=webhook_id, why=why)
                return result, None
            wait = self.policy.next_wait(attempt, arrived, self._clock(), asked)
            if wait is None:
                logs.event(log, "bot delivery expired", logging.WARNING, bot=self.bot.name,
                           url=self._url, id=webhook_id, why=why, tries=attempt)
                return "expired", None
            logs.event(log, "bot delivery retried", bot=self.bot.name, url=self._url,
                       id=webhook_id, why=why, tries=attempt, wait=round(wait, 1))
            await asyncio.sleep(wait)

    async def _post(self, webhook_id: str,
                    body: bytes) -> tuple[int, str, bytes, float | None]:
        now = self._clock()
        headers = signing.headers(self.bot.secret, webhook_id, int(now), body)
        async with self._http.post(self.bot.url, data=body, headers=headers,
                                   allow_redirects=False,
                                   timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
                                   ) as answer:
            data = await answer.content.read(MAX_REPLY + 1)
            return (answer.status, answer.headers.get("Content-Type", ""), data,
                    retry_after(answer.headers.get("Retry-After"), now))

    async def _reply(self, message: Incoming, reply: Reply) -> None:
        if self.link is None:
            return
        try:
            await self.link.send_reply(message, reply.body, reply.subject, reply.thread)
        except Exception as exc:  # the delivery is done: its reply is lost, and said so
            log.warning("bot %s: the reply to %s could not be sent: %r", self.bot.name,
                        message.id, exc)
            if self._metrics is not None:
                reason = "omemo" if isinstance(exc, OmemoUnavailable | PayloadTooLarge) else "xmpp"
                self._metrics.bot_replies_failed.labels(self.bot.name, reason).inc()
