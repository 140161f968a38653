"""Wiring and lifecycle: config -> state, authentication, relay -> web server.

``Gateway.start()`` returns once the HTTP port accepts connections; ``drain()`` makes
``/readyz`` answer 503 for ``drain_seconds`` (a load balancer moves new requests away)
while everything is still served; ``stop()`` stops accepting, lets in-flight requests
finish, closes every XMPP stream and the shared state, and is idempotent.
``reload()`` (SIGHUP) reads the configuration again and swaps what may change while
running (accounts, tokens, webhooks, topics, templates); a configuration that does not
load keeps the running one, and says why in the log. On SIGHUP the files are read and
the templates compiled in a worker thread (``reload_in_background``): the event loop
keeps serving while they load, and only the swap runs on it.

The guards' state is this process's own (``state.memory``), or with ``redis_url`` shared
by every instance in Redis (``state.redis``), its digests keyed by ``state_secret_file``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from aiohttp import web

from xmpp_post import cpu, logs
from xmpp_post.auth.tokens import TokenScheme
from xmpp_post.config import Config
from xmpp_post.config.live import LiveConfig, load_templates
from xmpp_post.errors import ConfigError
from xmpp_post.http.app import make_app, memory_guards
from xmpp_post.http.guards import Guards
from xmpp_post.http.server import GatewayRunner
from xmpp_post.metrics import Metrics
from xmpp_post.model import Sender
from xmpp_post.proxy_protocol import ProxySite
from xmpp_post.relay import Relay
from xmpp_post.state import StateKey
from xmpp_post.tasks import TaskGroup
from xmpp_post.templates import TemplateSet
from xmpp_post.xmpp.directory import ServiceDirectory
from xmpp_post.xmpp.pool import SessionPool
from xmpp_post.xmpp.relay import XmppRelay
from xmpp_post.xmpp.session import SessionOptions, XmppSession

if TYPE_CHECKING:
    from xmpp_post.state.redis import RedisState

log = logging.getLogger(__name__)


def session_options(config: Config) -> SessionOptions:
    server = (config.xmpp_server.host, config.xmpp_server.port) if config.xmpp_server else None
    return SessionOptions(
        server=server, direct_tls=config.direct_tls, ca_file=config.ca_file,
        insecure_skip_tls_verify=config.insecure_skip_tls_verify,
        connect_timeout=config.connect_timeout, ack_timeout=config.ack_timeout,
        receipt_timeout=config.receipt_timeout, bounce_wait=config.bounce_wait,
        retry_after=config.retry_after,
    )


def xmpp_relay(config: Config, metrics: Metrics | None = None) -> XmppRelay:
    options = session_options(config)
    directory = ServiceDirectory()  # which domains are group chat services, for all senders

    def factory(sender: Sender) -> XmppSession:
        return XmppSession(sender, options, directory, metrics)

    pool = SessionPool(factory, idle_timeout=config.idle_timeout,
                       max_sessions=config.max_sessions, retry_after=config.retry_after,
                       max_opening=config.max_concurrent_opens, metrics=metrics)
    if metrics is not None:
        metrics.track_open_sessions(lambda: pool.open_sessions)
    return XmppRelay(pool, request_timeout=config.request_timeout,
                     retry_after=config.retry_after, max_stanza_size=config.max_stanza_size,
                     directory=directory)


async def _server_accepts(host: str, port: int, timeout: float) -> str | None:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        return f"the XMPP server {host}:{port} is unreachable ({exc or 'timeout'})"
    writer.close()
    return None


ConfigSource = Callable[[], Config]  # reads the configuration again, for a reload
RELOAD_GRACE = 30.0  # seconds stopping waits for a reload in progress


def guards_for(config: Config, relay: Relay,
               live: LiveConfig) -> tuple[Guards, RedisState | None]:
    """The guards with this process's state, or with the state shared in Redis."""
    base = memory_guards(config, live)
    key = StateKey(config.state_secret) if config.state_secret is not None else base.key
    verified = relay.pool.verified if isinstance(relay, XmppRelay) else base.verified
    base = replace(base, key=key, verified=verified)
    if not config.redis_url:
        return base, None
    from xmpp_post.state.redis import RedisIdempotencyStore, RedisLoginThrottle, RedisState

    shared = RedisState(config.redis_url, key=key, timeout=config.redis_timeout,
                        retry_after=config.retry_after)
    lease = config.request_timeout + config.client_timeout + 5  # longer than any request
    throttle = RedisLoginThrottle(shared, window=config.auth_failure_window,
                                  pair_limit=config.auth_failure_limit,
                                  address_limit=config.auth_failure_limit_address,
                                  account_limit=config.auth_failure_limit_account,
                                  lease=lease)
    store = RedisIdempotencyStore(shared, window=config.idempotency_window, lease=lease)
    return replace(base, throttle=throttle, idempotency=store), shared


class Gateway:
    """One running xmpp-post: its relay and its HTTP listener. ``source`` reads the
    configuration again for ``reload()`` (the command line passes its file and flags)."""

    def __init__(self, config: Config, relay: Relay | None = None, *,
                 source: ConfigSource | None = None, live: LiveConfig | None = None) -> None:
        logs.quiet()
        self.config = config
        self.source = source
        self.live = live if live is not None else LiveConfig(config)
        self.metrics = Metrics()
        self.relay: Relay = relay if relay is not None else xmpp_relay(config, self.metrics)
        self.guards, self.shared = guards_for(config, self.relay, self.live)
        self.app = make_app(config, self.relay, metrics=self.metrics, readiness=self.readiness,
                            degradation=self.degradation, guarded_by=self.guards,
                            live=self.live)
        self.app.on_response_prepare.append(self._close_when_draining)
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
        return await self.shared.problem() if self.shared is not None else None

    async def _close_when_draining(self, _request: web.Request,
                                   response: web.StreamResponse) -> None:
        if self.draining:  # clients connected directly reconnect elsewhere
            response.force_close()
            response.headers["Connection"] = "close"

    @property
    def url(self) -> str:
        host = self.config.listen.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        if self.config.insecure_skip_tls_verify:
            log.warning("TLS CERTIFICATE VERIFICATION IS OFF (insecure_skip_tls_verify): "
                        "anyone on the path to the XMPP server can read passwords")
        await self.relay.start()
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
        site: web.BaseSite = (ProxySite(self._runner, host, port,
                                        header_timeout=self.config.client_timeout)
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
                   state="redis" if self.shared is not None else "memory",
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
        if loaded is None:
            return False
        self._swap(*loaded)
        return True

    def reload_in_background(self) -> None:
        """Reload as ``reload()`` does, reading and compiling in a worker thread; reloads
        asked for while one runs follow it, one at a time (SIGHUP's handler)."""
        self._reloads.spawn(self._reload_off_loop(), "reload")

    async def _reload_off_loop(self) -> bool:
        async with self._reloading:
            loaded = await asyncio.to_thread(self._load, None)
            if loaded is None:
                return False
            self._swap(*loaded)
            return True

    def _load(self, fresh: Config | None) -> tuple[Config, TemplateSet] | None:
        """The configuration and its compiled templates; None, with the reason logged
        and counted, when they do not load. Safe to run in any thread."""
        try:
            if fresh is None:
                if self.source is None:
                    log.error("reload refused: the gateway has no configuration source")
                    self.metrics.reloads.labels("refused").inc()
                    return None
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
        await self.relay.stop()
        shared, self.shared = self.shared, None
        if shared is not None:
            await shared.close()


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
