"""A bot's runner driven without a network: a scripted HTTP side (``ScriptedHttp``,
``answer``), a recording link, and the message and bot the unit tests use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any

from xmpp_post.bots.answers import (
    RetryPolicy,
)
from xmpp_post.bots.runner import BotRunner
from xmpp_post.config.bots import Bot
from xmpp_post.incoming import Incoming, ReplyTo
from xmpp_post.metrics import Metrics
from xmpp_post.state.memory_lasting import memory_lasting

MESSAGE = Incoming(id="sid-1", type="chat", sender="alice@example.org/phone",
                   to="bot@example.org/x", body="hello", thread="t", real_jid="alice@example.org",
                   reply_to=ReplyTo("m0", "bot@example.org"), oob=("https://e.org/f",),
                   time="2026-12-07T10:00:00Z")

class ScriptedHttp:
    """Answers each POST with the next scripted answer (an Exception is raised)."""

    def __init__(self, answers: list[Answer | Exception]) -> None:
        self.answers: Iterator[Answer | Exception] = iter(answers)
        self.posts: list[dict[str, Any]] = []

    @asynccontextmanager
    async def post(self, url: str, **kwargs: Any) -> Any:
        self.posts.append({"url": url, **kwargs})
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        yield answer

def answer(status: int, body: bytes = b"", content_type: str = "",
           **headers: str) -> Answer:
    return Answer(status, body, content_type, headers)

BOT = Bot(name="b", account="bot@example.org", url="https://u:p@hooks.example/x?t=1",
          secret=b"s" * 24, retry_for=60)

def runner_for(http: ScriptedHttp, now: list[float] | None = None,
               metrics: Metrics | None = None) -> tuple[BotRunner, Link]:
    clock = now or [1000.0]
    runner = BotRunner(BOT, memory_lasting(), http, metrics=metrics,  # type: ignore[arg-type]
                       policy=RetryPolicy(BOT.retry_for, first=0.0, cap=0.0),
                       clock=lambda: clock[0])
    link = Link()
    runner.link = link
    return runner, link

async def next_item(runner: BotRunner) -> Any:
    [item] = await runner._queues.peek(runner.queue, 1)
    return item


class Answer:
    """An HTTP answer as the runner reads it (status, headers, content)."""

    def __init__(self, status: int, body: bytes, content_type: str,
                 headers: dict[str, str]) -> None:
        self.status, self.body = status, body
        self.headers = {"Content-Type": content_type, **headers}
        self.content = self

    async def read(self, _limit: int) -> bytes:
        return self.body

class Link:
    def __init__(self) -> None:
        self.replies: list[tuple[str, str, str | None, str | None]] = []

    async def send_reply(self, message: Incoming, body: str, subject: str | None = None,
                         thread: str | None = None) -> None:
        self.replies.append((message.id, body, subject, thread))
