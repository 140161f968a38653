"""The HTTP application on aiohttp: request observation, errors, health, the fronts.

The application serves the fronts it is given (``xmpp_post.fronts``: the seed API,
webhooks, ntfy; ``service`` chooses them), behind the guards it is given
(``guards.Guards``: the authentication chain and the state); it builds neither.
``GET /healthz`` reports liveness, ``/readyz`` readiness, ``/metrics`` Prometheus
metrics and ``/openapi.json`` the API (each front's part in one document). Every error,
ours or aiohttp's, leaves through ``render.render_error`` in one JSON shape; every
request gets a request id (``X-Request-Id``, echoed if the client sent a sane one) and
one structured log line.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from xmpp_post import ids, logs
from xmpp_post.auth.webhook_urls import PATH_PREFIX, loggable_path
from xmpp_post.config import Config
from xmpp_post.config.live import LiveConfig
from xmpp_post.errors import GatewayError, MethodNotAllowed, NotFound, PayloadTooLarge
from xmpp_post.http import guards, openapi
from xmpp_post.http.clients import TrustedProxies, forwarded_middleware
from xmpp_post.http.context import (
    AUTH,
    CONFIG,
    DEGRADATION,
    ERROR_SHAPES,
    ERROR_WATCHERS,
    FRONTS,
    LIVE,
    METRICS,
    NOTES,
    PAYLOADS,
    READINESS,
    RELAY,
    SENDING,
    SENT_WATCHERS,
    SPOOL,
    UPLOAD_ROUTES,
    Front,
    Readiness,
    error_shape,
    note,
)
from xmpp_post.http.render import HttpStatusError, render_error, status_of
from xmpp_post.http.spool import SpoolDir
from xmpp_post.metrics import CONTENT_TYPE, Metrics
from xmpp_post.relay import Relay

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Methods named in metrics as they are; any other (a client may send any token) is
# "other", so clients cannot grow the metrics without bound.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _translate(exc: web.HTTPException) -> GatewayError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = tuple(sorted(exc.allowed_methods))
        return MethodNotAllowed(f"method {exc.method} is not allowed here; use "
                                f"{', '.join(allowed)}", allowed=allowed)
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
                          logs.escape(loggable_path(request.path)))
            response = _error_response(request,
                                       GatewayError("the gateway failed unexpectedly"))
        response.headers[REQUEST_ID_HEADER] = request_id
        route = request.match_info.route.resource
        route_name = route.canonical if route is not None else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics = request.app[METRICS]
        metrics.count_request(route_name, method, response.status)
        metrics.count_credential(notes.get("via"), response.status)
        # A webhook URL's line names the URL, its secret cut after a few characters.
        logged_route = (loggable_path(request.path) if route_name.startswith(PATH_PREFIX)
                        else route_name)
        logs.event(log, "request", method=method, route=logged_route,
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
    status = status_of(error)
    if error.code == "ack_timeout":
        metrics.ack_timeouts.inc()
    elif status == 429:
        metrics.rate_limited.inc()
    for watch in request.app[ERROR_WATCHERS]:
        watch(request, error, status)
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
    config, templates = request.app[CONFIG], request.app[LIVE].templates.describe()
    parts = [front.openapi(config, templates) for front in request.app[FRONTS]]
    document = openapi.document(config, parts)
    return web.Response(body=json.dumps(document, indent=1).encode(),
                        content_type="application/json")


async def _always_ready() -> str | None:
    return None


async def _open_spool(app: web.Application) -> None:
    app[SPOOL].open()


async def _close_spool(app: web.Application) -> None:
    app[SPOOL].close()


def make_app(config: Config, relay: Relay, *, fronts: Sequence[Front],
             guarded_by: guards.Guards, live: LiveConfig, metrics: Metrics | None = None,
             readiness: Readiness = _always_ready,
             degradation: Readiness = _always_ready,
             spool: SpoolDir | None = None) -> web.Application:
    """The aiohttp application serving ``fronts`` (in that order, after the gateway's own
    routes); the caller owns the relay's start and stop. ``live`` is the running
    configuration a reload swaps (the guards' schemes must read the same).
    ``degradation``: None, or what the gateway cannot do now though it serves (/readyz).
    ``spool``: where files wait (by default in ``spool_dir``), opened when the
    application starts (removing what dead processes left there), closed when it stops."""
    forwarding = ([forwarded_middleware(TrustedProxies(config.trusted_proxy))]
                  if config.trusted_proxy else [])
    # The largest body any route takes; guards.limits holds each request to its own.
    app = web.Application(middlewares=[*forwarding, observe_middleware,
                                       *guards.middlewares(config, guarded_by)],
                          client_max_size=max(config.max_body, config.max_template_body))
    app[CONFIG] = config
    app[RELAY] = relay
    app[AUTH] = guarded_by.auth
    app[LIVE] = live
    app[METRICS] = metrics if metrics is not None else Metrics()
    app[READINESS] = readiness
    app[DEGRADATION] = degradation
    app[SENDING] = set()
    app[PAYLOADS] = set()
    app[ERROR_SHAPES] = {}
    app[ERROR_WATCHERS] = []
    app[SENT_WATCHERS] = []
    app[UPLOAD_ROUTES] = {}
    app[SPOOL] = spool if spool is not None else SpoolDir(config.spool_dir)
    app.on_startup.append(_open_spool)
    app.on_cleanup.append(_close_spool)
    app[FRONTS] = tuple(fronts)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus_metrics)
    app.router.add_get("/openapi.json", openapi_json)
    for front in fronts:
        front.add_routes(app, config)
    return app
