"""Wiring and lifecycle: config -> state, authentication, relay, fronts -> web server.

The wiring is here and nowhere else: which fronts the application serves
(``fronts_for``), the authentication chain (``authenticator``), the guards' state
(``guards_for``: memory, Redis or SQLite), and the relay (``relay_setup.xmpp_relay``:
the XMPP side, with OMEMO's keys where ``state_setup.omemo_keys`` says).

``Gateway.start()`` returns once the HTTP port accepts connections; ``drain()`` makes
``/readyz`` answer 503 for ``drain_seconds`` (a load balancer moves new requests away)
while everything is still served; ``stop()`` stops accepting, lets in-flight requests
finish, closes every XMPP stream and the shared state, and is idempotent.
``reload()`` (SIGHUP) reads the configuration again and swaps what may change while
running (accounts, tokens, webhooks, topics, templates); a configuration that does not
load keeps the running one, and says why in the log. On SIGHUP the files are read and
the templates compiled in a worker thread (``reload_in_background``): the event loop
keeps serving while they load, and only the swap runs on it.

Which state, and where (memory, Redis with ``redis_url``, SQLite in ``state_dir``), is
chosen in ``state_setup``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from xmpp_post import cpu, logs
from xmpp_post.auth import Authenticator
from xmpp_post.auth.basic import BasicScheme
from xmpp_post.auth.tokens import TokenScheme
from xmpp_post.auth.webhook_urls import WebhookUrlScheme
from xmpp_post.auth.webhooks import WebhookScheme
from xmpp_post.bots_setup import BotHost
from xmpp_post.config import Config
from xmpp_post.config.live import LiveConfig, load_templates
from xmpp_post.errors import ConfigError
from xmpp_post.fronts.hooks.hooks_routes import FRONT as HOOKS
from xmpp_post.fronts.msg.msg_routes import FRONT as MSG
from xmpp_post.fronts.ntfy.ntfy_routes import FRONT as NTFY
from xmpp_post.fronts.ntfy.query_auth import QueryParamScheme
from xmpp_post.fronts.web import FRONT as WEB
from xmpp_post.http import openapi
from xmpp_post.http.app import make_app
from xmpp_post.http.clients import TrustedProxies
from xmpp_post.http.context import Front
from xmpp_post.http.guards import Guards
from xmpp_post.http.proxy_protocol import ProxySite
from xmpp_post.http.server import GatewayRunner
from xmpp_post.metrics import Metrics
from xmpp_post.relay import Relay
from xmpp_post.relay_setup import session_options as session_options  # (re-exported)
from xmpp_post.relay_setup import xmpp_relay
from xmpp_post.state import StateKey
from xmpp_post.state.memory import MemoryIdempotencyStore, MemoryLoginThrottle
from xmpp_post.state_setup import omemo_keys, open_state, with_state
from xmpp_post.tasks import TaskGroup
from xmpp_post.templates import TemplateSet
from xmpp_post.xmpp.pool import SessionPool
from xmpp_post.xmpp.xmpp_relay import XmppRelay

if TYPE_CHECKING:
    from xmpp_post.state.redis import RedisState
    from xmpp_post.state.sqlite import SqliteState

log = logging.getLogger(__name__)


async def _server_accepts(host: str, port: int, timeout: float) -> str | None:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        return f"the XMPP server {host}:{port} is unreachable ({exc or 'timeout'})"
    writer.close()
    return None


ConfigSource = Callable[[], Config]  # reads the configuration again, for a reload
RELOAD_GRACE = 30.0  # seconds stopping waits for a reload in progress


def fronts_for(config: Config) -> list[Front]:
    """The ways in, in the order their routes are tried: webhooks before a base path
    of ``/`` could take ``/hooks/…``; the web page before ntfy, whose ``/`` answers any
    method; ntfy at the root, when it is on."""
    return [HOOKS, MSG, WEB, *([NTFY] if config.ntfy else [])]


def authenticator(config: Config, live: LiveConfig) -> Authenticator:
    """Webhook URLs, signed webhooks, ntfy's ``?auth=`` (checked by the header schemes),
    tokens, then HTTP Basic (see ``xmpp_post.auth``)."""
    tokens, basic = TokenScheme(live), BasicScheme(config.domain, live.encrypt_for)
    return Authenticator([WebhookUrlScheme(live), WebhookScheme(live),
                          QueryParamScheme([tokens, basic]), tokens, basic],
                         challenge_order=[basic, tokens])


def memory_guards(config: Config, live: LiveConfig | None = None) -> Guards:
    """Guards with this process's own state, and the authentication chain."""
    return Guards(
        auth=authenticator(config, live if live is not None else LiveConfig(config)),
        throttle=MemoryLoginThrottle(window=config.auth_failure_window,
                                     pair_limit=config.auth_failure_limit,
                                     address_limit=config.auth_failure_limit_address,
                                     account_limit=config.auth_failure_limit_account),
        idempotency=MemoryIdempotencyStore(window=config.idempotency_window,
                                           max_entries=config.idempotency_max_entries),
        key=StateKey())


def web_app(config: Config, relay: Relay, *, metrics: Metrics | None = None,
            guarded_by: Guards | None = None,
            live: LiveConfig | None = None) -> web.Application:
    """The application with this configuration's fronts, guarded by ``guarded_by``
    (default: this process's own state, the relay telling which senders are proven)."""
    live = live if live is not None else LiveConfig(config)
    guards = guarded_by if guarded_by is not None else replace(
        memory_guards(config, live), verified=relay.verified)
    return make_app(config, relay, fronts=fronts_for(config), guarded_by=guards,
                    live=live, metrics=metrics)


def api_document(config: Config,
                 templates: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The OpenAPI document of this configuration's fronts (``templates``: the names and
    descriptions the ``template`` parameter lists)."""
    described = templates or {}
    return openapi.document(config, [front.openapi(config, described)
                                     for front in fronts_for(config)])


def guards_for(config: Config, relay: Relay, live: LiveConfig,
               state: SqliteState | None = None) -> tuple[Guards, RedisState | None]:
    """The guards with this process's state (its idempotency answers in ``state`` if
    given), or with the state shared in Redis (``state_setup.with_state``)."""
    base = replace(memory_guards(config, live), verified=relay.verified)
    return with_state(config, base, state)


class Gateway:
    """One running xmpp-post: its relay and its HTTP listener. ``source`` reads the
    configuration again for ``reload()`` (the command line passes its file and flags);
    ``clock`` times the XMPP relay's idle sessions and rooms (tests inject one)."""

    def __init__(self, config: Config, relay: Relay | None = None, *,
                 source: ConfigSource | None = None, live: LiveConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        logs.quiet()
        self.config = config
        self.source = source
        self.live = live if live is not None else LiveConfig(config)
        self.metrics = Metrics()
        self._xmpp: XmppRelay | None = None  # the relay, when the gateway built it
        self.state, self.lasting = open_state(config, self.metrics)  # locked until stop()
        if relay is None:
            relay = self._xmpp = xmpp_relay(config, self.metrics, clock,
                                            omemo_keys(config, self.lasting))
        self.relay: Relay = relay
        self.guards, self.shared = guards_for(config, self.relay, self.live, self.state)
        self.bots = BotHost(config, self.lasting, self.metrics, session_options(config),
                            lambda: self.shared,  # refuses bots without a state_dir
                            self._xmpp.omemo if self._xmpp is not None else None)
        self.app = make_app(config, self.relay, fronts=fronts_for(config),
                            guarded_by=self.guards, live=self.live, metrics=self.metrics,
                            readiness=self.readiness, degradation=self.degradation)
        self.app.on_response_prepare.append(self._close_when_draining)
        self.bots.watch(self.app)  # the alerts bots send, for their alert actions
        self._runner: web.AppRunner | None = None
        self._reloads = TaskGroup("reloads")
        self._reloading = asyncio.Lock()
        self._serving = False
        self.draining = False
        self.port = config.listen.port

    async def readiness(self) -> str | None:
        """None when the gateway can serve; otherwise why not."""
        if self.draining:
            return "draining: shutting down"
        if not self._serving:
            return "not serving (starting or shutting down)"
        server = self.config.xmpp_server
        if server is not None:
            return await _server_accepts(server.host, server.port, 2.0)
        return None

    async def degradation(self) -> str | None:
        """None, or what the gateway cannot do now although it serves."""
        stores: list[RedisState | SqliteState] = [s for s in (self.shared, self.state) if s]
        found = [problem for store in stores if (problem := await store.problem())]
        return "; ".join(found) if found else None

    async def _close_when_draining(self, _request: web.Request,
                                   response: web.StreamResponse) -> None:
        if self.draining:  # clients connected directly reconnect elsewhere
            response.force_close()
            response.headers["Connection"] = "close"

    @property
    def xmpp_relay(self) -> XmppRelay:
        """The XMPP relay the gateway built (TypeError when it was given another)."""
        if self._xmpp is None:
            raise TypeError(f"this gateway relays through {type(self.relay).__name__}, "
                            "not XmppRelay")
        return self._xmpp

    @property
    def pool(self) -> SessionPool:
        """The XMPP sessions of the relay (``xmpp_relay``'s pool)."""
        return self.xmpp_relay.pool

    @property
    def url(self) -> str:
        host = self.config.listen.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        if self.config.insecure_skip_tls_verify:
            log.warning("TLS CERTIFICATE VERIFICATION IS OFF (insecure_skip_tls_verify): "
                        "anyone on the path to the XMPP server can read passwords")
        if self.state is not None:
            await self.state.start()
        await self.relay.start()
        await self.bots.start()
        cpu.start()  # the worker threads, started before any request waits for one
        # keepalive_timeout also bounds how long a client may take to send a request
        # head (aiohttp arms it when the connection opens): slow-header clients are cut.
        self._runner = GatewayRunner(self.app, handle_signals=False, access_log=None,
                                     shutdown_timeout=self.config.request_timeout + 2,
                                     keepalive_timeout=self.config.client_timeout,
                                     lingering_time=1.0,
                                     max_line_size=self.config.max_header_size,
                                     max_field_size=self.config.max_header_size)
        await self._runner.setup()
        host, port = self.config.listen.host, self.config.listen.port
        trusted = TrustedProxies(self.config.trusted_proxy).trusted
        site: web.BaseSite = (ProxySite(self._runner, host, port,
                                        header_timeout=self.config.client_timeout,
                                        trusted=trusted)
                              if self.config.proxy_protocol else
                              web.TCPSite(self._runner, host, port))
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        self._serving = True
        logs.event(log, "listening", url=self.url + self.config.base_path,
                   domains=",".join(self.config.domain),
                   state=("redis" if self.shared is not None
                          else "sqlite" if self.state is not None else "memory"),
                   state_dir=str(self.state.directory) if self.state is not None else "-",
                   proxy_protocol=self.config.proxy_protocol)

    async def drain(self, seconds: float, hurry: asyncio.Event | None = None) -> None:
        """Answer /readyz with 503 for ``seconds`` (or until ``hurry`` is set) while still
        serving, so a load balancer moves new requests to other instances."""
        self.draining = True
        if seconds <= 0:
            return
        logs.event(log, "draining", seconds=seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for((hurry or asyncio.Event()).wait(), seconds)

    def reload(self, fresh: Config | None = None) -> bool:
        """Swap in ``fresh`` (default: read ``source`` again); False, with the reason
        logged, when it does not load: the running configuration stays."""
        loaded = self._load(fresh)
        if loaded is not None:
            self._swap(*loaded)
        return loaded is not None

    def reload_in_background(self) -> None:
        """Reload as ``reload()`` does, reading and compiling in a worker thread; reloads
        asked for while one runs follow it, one at a time (SIGHUP's handler)."""
        self._reloads.spawn(self._reload_off_loop(), "reload")

    async def _reload_off_loop(self) -> bool:
        async with self._reloading:
            loaded = await asyncio.to_thread(self._load, None)
            if loaded is not None:
                self._swap(*loaded)
            return loaded is not None

    def _load(self, fresh: Config | None) -> tuple[Config, TemplateSet] | None:
        """The configuration and its compiled templates; None, with the reason logged
        and counted, when they do not load. Safe to run in any thread."""
        try:
            if fresh is None:
                if self.source is None:
                    raise ConfigError("reload", "the gateway has no configuration source")
                fresh = self.source()
            return fresh, load_templates(fresh)
        except ConfigError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            self.metrics.reloads.labels("refused").inc()
            return None

    def _swap(self, fresh: Config, templates: TemplateSet) -> None:
        ignored = self.live.swap(fresh, templates)
        for scheme in self.guards.auth.schemes:
            if isinstance(scheme, TokenScheme):
                scheme.rates.forget_except(set(self.live.tokens.by_name))
        if ignored:
            log.warning("reload: these settings need a restart and keep their running "
                        "values: %s", ", ".join(ignored))
        logs.event(log, "reloaded", accounts=len(self.live.accounts),
                   tokens=len(self.live.tokens.by_name), webhooks=len(self.live.webhooks),
                   templates=len(templates.names()))
        self.metrics.reloads.labels("done").inc()

    async def stop(self) -> None:
        self._serving = False
        with contextlib.suppress(TimeoutError):  # a reload asked for before stopping ends
            await asyncio.wait_for(self._reloads.wait(), RELOAD_GRACE)
        await self._reloads.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self.bots.stop()
        await self.relay.stop()
        shared, self.shared = self.shared, None
        if shared is not None:
            await shared.close()
        if self.state is not None:
            await self.state.close()  # idempotent


async def serve(config: Config, *, source: ConfigSource | None = None,
                live: LiveConfig | None = None) -> None:
    """Run until SIGTERM or SIGINT, then drain and shut down gracefully (a second
    signal cuts the drain short); reload on SIGHUP."""
    sys.setswitchinterval(cpu.SWITCH_INTERVAL)  # the loop waits less for the GIL
    gateway = Gateway(config, source=source, live=live)
    stopping, hurry = asyncio.Event(), asyncio.Event()

    def stop() -> None:
        (hurry if stopping.is_set() else stopping).set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    loop.add_signal_handler(signal.SIGHUP, gateway.reload_in_background)
    await gateway.start()
    try:
        await stopping.wait()
        log.info("shutting down")
        await gateway.drain(config.drain_seconds, hurry)
    finally:
        await gateway.stop()
    log.info("stopped")
