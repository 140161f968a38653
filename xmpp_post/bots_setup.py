"""The bots' wiring (beside ``service``): for each ``[bots.NAME]``, its XMPP session
(``xmpp.bot_session``) and its runner (``bots.runner``), joined by callbacks, and, with
``redis_url``, the lease that keeps it on one instance at a time (``bots.lease``) and
what the instances share to hand it over (``bots.handover``: the archive cursor, the
messages handled).

``BotHost(config, lasting, metrics)`` refuses bots without a state directory
(``require_lasting``), before anything starts; ``start()`` starts every bot (or its
wait for the lease); ``stop()`` stops them, releasing their leases; idempotent.

With ``alertmanager_url``, a bot's messages are first offered to the built-in alert
actions (``answerer_for``), and the alert groups its account sends through the HTTP
side are remembered for them (``watch``, on the application's ``SENT_WATCHERS``).

A bot has OMEMO on (``omemo_on``) when its account's messages default to OMEMO: the
account's ``encrypt = "omemo"`` or the gateway's ``encrypt``, as for sending (issue
24). It then decrypts what it receives and encrypts its replies to encrypted messages
(``xmpp.bot_omemo``) with the device its account sends with from this instance (the
relay's ``OmemoDevices``, ``omemo``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from xmpp_post import logs
from xmpp_post.bots.alert_actions import AlertActions
from xmpp_post.bots.alert_memory import remember_alerts
from xmpp_post.bots.answering import Answerer
from xmpp_post.bots.handover import Handover, RedisHandover
from xmpp_post.bots.lease import RENEW_EVERY, TRY_EVERY, BotLease
from xmpp_post.bots.runner import BotRunner
from xmpp_post.config import Config
from xmpp_post.config.accounts import Account
from xmpp_post.config.bots import Bot, redacted_url
from xmpp_post.http.context import SENT_WATCHERS
from xmpp_post.metrics import Metrics
from xmpp_post.state.lasting import KeyValue, Lasting, require_lasting
from xmpp_post.state.sealed import SealedQueues
from xmpp_post.tasks import TaskGroup
from xmpp_post.xmpp.bot_omemo import BotOmemo
from xmpp_post.xmpp.bot_session import BotAccount, BotSession
from xmpp_post.xmpp.omemo_devices import OmemoDevices
from xmpp_post.xmpp.session import SessionOptions

if TYPE_CHECKING:
    from xmpp_post.state.redis import RedisState

log = logging.getLogger(__name__)

KEEP_CURSOR_EVERY = 3600.0  # seconds between two extensions of a bot's shared cursor

RoomMembers = Callable[[str], Awaitable[frozenset[str]]]


def answerer_for(bot: Bot, kv: KeyValue, http: aiohttp.ClientSession,
                 room_members: RoomMembers) -> Answerer | None:
    """What answers ``bot``'s messages before its webhook: the alert actions when it
    has ``alertmanager_url`` (``bots.alert_actions``)."""
    if bot.alertmanager_url is None:
        return None
    return AlertActions(account=bot.account, alertmanager_url=bot.alertmanager_url,
                        allow=bot.allow, store=kv, http=http, room_members=room_members)


def omemo_on(config: Config, account: Account | None) -> bool:
    """Whether a bot on ``account`` has OMEMO on (see the module docstring)."""
    return "omemo" in (config.encrypt, account.encrypt if account is not None else "none")


def handover_for(bot: Bot, shared: RedisState, lease: BotLease) -> Handover:
    """What the instances running ``bot`` in turn share (``bots.handover``), fenced by
    ``lease``."""
    return RedisHandover(
        shared.client, lease_key=lease.key, owner=lease.owner,
        cursor_key=shared.name("bot-cursor", bot.name, bot.account),
        handled_key=lambda webhook_id: shared.name("bot-handled", bot.name, webhook_id),
        keep=bot.retry_for)


BOT_QUEUES_PURPOSE = "bot queues"


def sealed_queues(config: Config, lasting: Lasting) -> Lasting:
    """``lasting`` with its queues' items encrypted at rest under ``state_secret_file``
    (``state.sealed``) when one is set: a waiting delivery holds a message's text,
    decrypted if it came OMEMO-encrypted. Without a secret, as it is."""
    if config.state_secret is None:
        return lasting
    return replace(lasting, queues=SealedQueues(lasting.queues, config.state_secret,
                                                BOT_QUEUES_PURPOSE))


class BotHost:
    """Every configured bot of one gateway; see the module docstring."""

    def __init__(self, config: Config, lasting: Lasting, metrics: Metrics,
                 options: SessionOptions,
                 shared: Callable[[], RedisState | None] = lambda: None,
                 omemo: OmemoDevices | None = None) -> None:
        self._config = config
        self._omemo = omemo  # the sending accounts' devices (None: no OMEMO keys)
        self.bots: Mapping[str, Bot] = config.sections.get("bots") or {}
        self._accounts: Mapping[str, Account] = config.sections.get("accounts") or {}
        if self.bots:
            require_lasting(lasting, "bots ([bots])")
        self._lasting = sealed_queues(config, lasting)
        self._metrics = metrics
        self._options = options
        self._shared = shared
        self._tasks = TaskGroup("bots")
        self._http: aiohttp.ClientSession | None = None
        self.sessions: dict[str, BotSession] = {}  # the bots running here, by name
        self.runners: dict[str, BotRunner] = {}
        self._running = {name: asyncio.Event() for name in self.bots}

    def watch(self, app: web.Application) -> None:
        """Remember the alert groups the bots with ``alertmanager_url`` send through
        ``app`` (its ``SENT_WATCHERS``), for their alert actions."""
        remember_alerts(app[SENT_WATCHERS], self._lasting.kv, frozenset(
            bot.account for bot in self.bots.values() if bot.alertmanager_url))

    async def start(self) -> None:
        if not self.bots or self._http is not None:
            return
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        shared = self._shared()
        for bot in self.bots.values():
            lease = handover = None
            if shared is not None:
                lease = BotLease(shared.client, shared.name("bot-lease", bot.name, bot.account))
                handover = handover_for(bot, shared, lease)
            self._tasks.spawn(self._hold(bot, lease, handover), f"bot {bot.name}")

    async def _hold(self, bot: Bot, lease: BotLease | None,
                    handover: Handover | None) -> None:
        """Run ``bot`` while this instance holds its lease (always, without Redis)."""
        while True:
            if lease is not None and not await self._try(lease.acquire()):
                await asyncio.sleep(TRY_EVERY)
                continue
            runner, session = self._make(bot, handover)
            work = TaskGroup(f"bot {bot.name}")
            work.spawn(runner.run(), "deliveries")
            session.start()
            self.runners[bot.name], self.sessions[bot.name] = runner, session
            self._running[bot.name].set()
            logs.event(log, "bot started", bot=bot.name, account=bot.account,
                       url=redacted_url(bot.url), rooms=len(bot.rooms),
                       lease="redis" if lease is not None else "-")
            try:
                await self._keep(lease, handover)
                log.warning("bot %s: its lease was lost; stopping it here", bot.name)
            finally:
                self._running[bot.name].clear()
                self.runners.pop(bot.name, None)
                self.sessions.pop(bot.name, None)
                await session.stop()
                await work.close()
                if lease is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(lease.release())

    async def _keep(self, lease: BotLease | None, handover: Handover | None) -> None:
        """Return when ``lease`` is lost (never without one: until cancelled); keep
        ``handover``'s cursor alive meanwhile (now, then every ``KEEP_CURSOR_EVERY``)."""
        held = asyncio.Event()
        if lease is None:
            await held.wait()
        kept = -math.inf
        while await self._try(lease.renew()):  # type: ignore[union-attr]
            if handover is not None and time.monotonic() - kept > KEEP_CURSOR_EVERY:
                kept = time.monotonic()
                await self._try(handover.keep())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(held.wait(), RENEW_EVERY)

    async def _try(self, step: Awaitable[Any]) -> bool:
        try:
            return bool(await step)
        except Exception as exc:  # Redis unreachable: no lease held
            log.warning("bot lease: Redis failed: %r", exc)
            return False

    def _make(self, bot: Bot, handover: Handover | None) -> tuple[BotRunner, BotSession]:
        assert self._http is not None
        runner = BotRunner(bot, self._lasting, self._http, metrics=self._metrics,
                           handover=handover)
        account = BotAccount(bot.account, self._accounts[bot.account].password, bot.nick,
                             bot.rooms, bot.mentions_only)
        decryptor = (BotOmemo(self._omemo, bot.account, self._options)
                     if self._omemo is not None
                     and omemo_on(self._config, self._accounts.get(bot.account)) else None)
        session = BotSession(account, self._options, runner.accept,
                             read_from=runner.read_from, skipped=runner.count_skipped,
                             omemo=decryptor)
        runner.link = session
        runner.answerer = answerer_for(bot, self._lasting.kv, self._http,
                                       session.room_members)
        return runner, session

    async def online(self, name: str, timeout: float = 30.0) -> BotSession:
        """Bot ``name``'s session once it runs here and is online."""
        async with asyncio.timeout(timeout):
            await self._running[name].wait()
            session = self.sessions[name]
            await session.online.wait()
            return session

    async def stop(self) -> None:
        await self._tasks.close()
        http, self._http = self._http, None
        if http is not None:
            await http.close()
