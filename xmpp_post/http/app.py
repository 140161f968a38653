"""The HTTP API on aiohttp: routes, request observation, errors, health.

``POST <base>`` and ``POST <base>/<recipient>[,<recipient>…]`` send a message as the
authenticated user (``messages``; with ``?template=NAME``, the message a template makes
of a tool's own payload: ``templated``); ``POST /hooks/NAME`` a signed webhook's
(``hooks``), and ntfy's publish routes at the root (``ntfy``) unless turned off;
``GET /healthz`` reports liveness, ``/readyz``
readiness, ``/metrics`` Prometheus metrics and ``/openapi.json`` the API. Every error,
ours or aiohttp's, leaves through ``errors.render_error`` in one JSON shape; every
request gets a request id (``X-Request-Id``, echoed if the client sent a sane one) and
one structured log line. ``POST <base>/`` (an empty recipient) is ``POST <base>``, as in
mod_post_msg's URL format.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from xmpp_post import ids, logs
from xmpp_post.auth import Authenticator
from xmpp_post.auth.basic import BasicScheme
from xmpp_post.auth.tokens import TokenScheme
from xmpp_post.auth.webhooks import WebhookScheme
from xmpp_post.config import Config
from xmpp_post.config.live import LiveConfig
from xmpp_post.errors import GatewayError, MethodNotAllowed, NotFound, PayloadTooLarge
from xmpp_post.fronts.hooks import hooks_routes as hooks
from xmpp_post.fronts.msg.msg_routes import options, post_message
from xmpp_post.fronts.ntfy import ntfy_routes as ntfy
from xmpp_post.fronts.ntfy.query_auth import QueryParamScheme
from xmpp_post.http import guards, openapi
from xmpp_post.http.clients import TrustedProxies, forwarded_middleware
from xmpp_post.http.context import (
    AUTH,
    CONFIG,
    DEGRADATION,
    ERROR_SHAPES,
    LIVE,
    METRICS,
    NOTES,
    READINESS,
    RELAY,
    SENDING,
    Readiness,
    error_shape,
    note,
)
from xmpp_post.http.render import HttpStatusError, render_error, status_of
from xmpp_post.metrics import CONTENT_TYPE, Metrics
from xmpp_post.relay import Relay
from xmpp_post.state import StateKey
from xmpp_post.state.memory import MemoryIdempotencyStore, MemoryLoginThrottle

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Methods named in metrics as they are; any other (a client may send any token) is
# "other", so clients cannot grow the metrics without bound.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _translate(exc: web.HTTPException) -> GatewayError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowed(f"method {exc.method} is not allowed here; use {allowed}",
                                headers={"Allow": allowed})
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge("the request body is larger than the gateway accepts")
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("no such endpoint")
    return HttpStatusError(exc.reason or "HTTP error", exc.status)


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, errors rendered, one log event and the request metrics for every
    request (one middleware, not two: each costs an await per request)."""
    supplied = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = supplied if _SANE_REQUEST_ID.fullmatch(supplied) else ids.request_id()
    token = logs.REQUEST_ID.set(request_id)
    notes: dict[str, str] = {}
    notes_token = NOTES.set(notes)
    started = time.perf_counter()
    try:
        try:  # every error, ours or aiohttp's, leaves in one shape
            response: web.StreamResponse = await handler(request)
        except GatewayError as error:
            response = _error_response(request, error)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _error_response(request, _translate(exc))
        except Exception:
            log.exception("unexpected error handling %s %s", logs.escape(request.method),
                          logs.escape(request.path))
            response = _error_response(request,
                                       GatewayError("the gateway failed unexpectedly"))
        response.headers[REQUEST_ID_HEADER] = request_id
        route = request.match_info.route.resource
        route_name = route.canonical if route is not None else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics = request.app[METRICS]
        metrics.count_request(route_name, method, response.status)
        metrics.count_credential(notes.get("via"), response.status)
        logs.event(log, "request", method=method, route=route_name,
                   status=response.status, ms=round((time.perf_counter() - started) * 1000, 2),
                   sender=notes.get("sender", "-"), via=notes.get("via", "-"),
                   error=notes.get("error", "-"),
                   peer=request.remote)
        return response
    finally:
        logs.REQUEST_ID.reset(token)
        NOTES.reset(notes_token)


def _error_response(request: web.Request, error: GatewayError) -> web.Response:
    note("error", error.code)
    metrics = request.app[METRICS]
    if error.code == "ack_timeout":
        metrics.ack_timeouts.inc()
    elif status_of(error) == 429:
        metrics.rate_limited.inc()
    return render_error(error, request.app[AUTH].challenge, shape=error_shape(request))


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    reason = await request.app[READINESS]()
    if reason is not None:
        return web.json_response({"status": "not_ready", "reason": reason}, status=503)
    degraded = await request.app[DEGRADATION]()
    if degraded is not None:  # serving what it can; every instance shares the problem
        return web.json_response({"status": "degraded", "reason": degraded})
    return web.json_response({"status": "ready"})


async def prometheus_metrics(request: web.Request) -> web.Response:
    response = web.Response(body=request.app[METRICS].render())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


async def openapi_json(request: web.Request) -> web.Response:
    """Made for each request: it lists the templates, which a reload may change."""
    templates = request.app[LIVE].templates.describe()
    document = openapi.document(request.app[CONFIG], templates)
    return web.Response(body=json.dumps(document, indent=1).encode(),
                        content_type="application/json")


async def _always_ready() -> str | None:
    return None


def authenticator(config: Config, live: LiveConfig) -> Authenticator:
    """Signed webhooks, ntfy's ``?auth=`` (checked by the header schemes), tokens, then
    HTTP Basic (see ``xmpp_post.auth``)."""
    tokens, basic = TokenScheme(live), BasicScheme(config.domain)
    return Authenticator([WebhookScheme(live), QueryParamScheme([tokens, basic]), tokens,
                          basic], challenge_order=[basic, tokens])


def memory_guards(config: Config, live: LiveConfig | None = None) -> guards.Guards:
    """Guards with this process's own state, and the authentication chain."""
    return guards.Guards(
        auth=authenticator(config, live if live is not None else LiveConfig(config)),
        throttle=MemoryLoginThrottle(window=config.auth_failure_window,
                                     pair_limit=config.auth_failure_limit,
                                     address_limit=config.auth_failure_limit_address,
                                     account_limit=config.auth_failure_limit_account),
        idempotency=MemoryIdempotencyStore(window=config.idempotency_window,
                                           max_entries=config.idempotency_max_entries),
        key=StateKey())


def make_app(config: Config, relay: Relay, *, metrics: Metrics | None = None,
             readiness: Readiness = _always_ready, degradation: Readiness = _always_ready,
             guarded_by: guards.Guards | None = None,
             live: LiveConfig | None = None) -> web.Application:
    """The aiohttp application; the caller owns the relay's start and stop. ``live`` is
    the running configuration a reload swaps (the guards' schemes must read the same).
    ``degradation``: None, or what the gateway cannot do now though it serves (/readyz)."""
    live = live if live is not None else LiveConfig(config)
    state = guarded_by if guarded_by is not None else memory_guards(config, live)
    forwarding = ([forwarded_middleware(TrustedProxies(config.trusted_proxy))]
                  if config.trusted_proxy else [])
    # The largest body any route takes; guards.limits holds each request to its own.
    app = web.Application(middlewares=[*forwarding, observe_middleware,
                                       *guards.middlewares(config, state)],
                          client_max_size=max(config.max_body, config.max_template_body))
    app[CONFIG] = config
    app[RELAY] = relay
    app[AUTH] = state.auth
    app[LIVE] = live
    app[METRICS] = metrics if metrics is not None else Metrics()
    app[READINESS] = readiness
    app[DEGRADATION] = degradation
    app[SENDING] = set()
    app[ERROR_SHAPES] = {}
    app[SENDING].add(app.router.add_post(hooks.ROUTE, hooks.post_hook))  # before a base "/"
    base = config.base_path.rstrip("/")
    for path in (base or "/", base + r"/{recipient:[\s\S]*}"):
        app[SENDING].add(app.router.add_post(path, post_message))
        app.router.add_route("OPTIONS", path, options)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus_metrics)
    app.router.add_get("/openapi.json", openapi_json)
    if config.ntfy:
        ntfy.add_routes(app, config)
    return app
