"""The HTTP API on aiohttp: routes, authentication, one error renderer, health.

``POST <base>`` and ``POST <base>/<recipient>[,<recipient>…]`` send a message as the
authenticated user; ``OPTIONS`` describes what is accepted; ``GET /healthz`` reports
liveness, ``/readyz`` readiness, ``/metrics`` Prometheus metrics and ``/openapi.json`` the
API. Every error, ours or aiohttp's, leaves through ``render_error`` in one JSON shape;
every request gets a request id (``X-Request-Id``, echoed if the client sent a sane one)
and one structured log line. A request naming several recipients is answered with
``{"results": [...]}``, one outcome per recipient (an error there has the same shape plus
``to`` and ``status``): 201 when all succeeded, otherwise 207 Multi-Status.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from aiohttp import web

from xmpp_post import guards, logs, openapi
from xmpp_post import request as parse
from xmpp_post.config import Config
from xmpp_post.errors import (
    GatewayError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from xmpp_post.metrics import CONTENT_TYPE, Metrics
from xmpp_post.relay import Relay, deliver_each
from xmpp_post.request import Rejected

log = logging.getLogger(__name__)

CONFIG = web.AppKey("config", Config)
RELAY = web.AppKey("relay", Relay)  # type: ignore[type-abstract]
Readiness = Callable[[], Awaitable[str | None]]  # None when ready, else the reason
METRICS = web.AppKey("metrics", Metrics)
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")
OPENAPI = web.AppKey("openapi", bytes)
REALM = 'Basic realm="xmpp-post", charset="UTF-8"'
ALLOW = "POST, OPTIONS"
REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# What the handlers learn about the current request (sender, error code), for its log line.
_NOTES: ContextVar[dict[str, str]] = ContextVar("request_notes")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def render_error(error: GatewayError) -> web.Response:
    """The one place an error becomes an HTTP response."""
    headers = dict(error.headers)
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = REALM
    return web.json_response(error.body(), status=error.status, headers=headers)


def _translate(exc: web.HTTPException) -> GatewayError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowed(f"method {exc.method} is not allowed here; use {allowed}",
                                headers={"Allow": allowed})
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge("the request body is larger than the gateway accepts")
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("no such endpoint")
    error = GatewayError(exc.reason or "HTTP error", code="http_error")
    error.status = exc.status
    return error


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, one log event and the request metrics for every request."""
    supplied = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = supplied if _SANE_REQUEST_ID.fullmatch(supplied) else secrets.token_hex(8)
    token = logs.REQUEST_ID.set(request_id)
    notes: dict[str, str] = {}
    notes_token = _NOTES.set(notes)
    started = time.perf_counter()
    try:
        response = await handler(request)
        response.headers[REQUEST_ID_HEADER] = request_id
        route = request.match_info.route.resource
        route_name = route.canonical if route is not None else "unmatched"
        request.app[METRICS].requests.labels(route_name, request.method,
                                             str(response.status)).inc()
        logs.event(log, "request", method=request.method, route=route_name,
                   status=response.status, ms=round((time.perf_counter() - started) * 1000, 2),
                   sender=notes.get("sender", "-"), error=notes.get("error", "-"),
                   peer=request.remote)
        return response
    finally:
        logs.REQUEST_ID.reset(token)
        _NOTES.reset(notes_token)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as error:
        return _error_response(request, error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_response(request, _translate(exc))
    except Exception:
        log.exception("unexpected error handling %s %s", request.method, request.path)
        return _error_response(request, GatewayError("the gateway failed unexpectedly"))


def _note(key: str, value: str) -> None:
    notes = _NOTES.get(None)
    if notes is not None:
        notes[key] = value


def _error_response(request: web.Request, error: GatewayError) -> web.Response:
    _note("error", error.code)
    metrics = request.app[METRICS]
    if error.code == "ack_timeout":
        metrics.ack_timeouts.inc()
    elif error.status == 429:
        metrics.rate_limited.inc()
    return render_error(error)


def _media_type(request: web.Request) -> tuple[str, str | None]:
    if "Content-Type" not in request.headers:
        return "", None
    return request.content_type.lower(), request.charset


async def post_message(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    sender = guards.sender_of(request, config.domain)
    _note("sender", sender.jid)
    media_type, charset = _media_type(request)
    parse.check_media_type(media_type)
    body = await request.read()  # already read, within the limits, by guards.limits
    asked = parse.messages(media_type, charset, body, request.match_info.get("recipient"),
                           sender, query=request.query_string, default_nick=config.muc_nick,
                           max_recipients=config.max_recipients)
    started = time.perf_counter()
    outcomes = await deliver_each(request.app[RELAY], sender, asked.items)
    elapsed = time.perf_counter() - started
    for outcome in outcomes:
        if not isinstance(outcome, Rejected):
            request.app[METRICS].delivery.observe(elapsed)
    if not asked.several:
        outcome = outcomes[0]
        if isinstance(outcome, Rejected):
            raise outcome.error
        return web.json_response(outcome.as_json(), status=201)
    results = []
    for outcome in outcomes:
        if isinstance(outcome, Rejected):
            results.append({"to": outcome.to, "status": outcome.error.status,
                            **outcome.error.body()})
        else:
            results.append({"status": 201, **outcome.as_json()})
    failed = any(isinstance(outcome, Rejected) for outcome in outcomes)
    return web.json_response({"results": results}, status=207 if failed else 201)


async def options(request: web.Request) -> web.Response:
    return web.json_response(
        {"methods": ["POST"], "content_types": list(parse.MEDIA_TYPES),
         "fields": list(parse.FIELDS), "types": list(parse.MESSAGE_TYPES)},
        headers={"Allow": ALLOW, "Accept-Post": ", ".join(parse.MEDIA_TYPES)},
    )


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    reason = await request.app[READINESS]()
    if reason is None:
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "not_ready", "reason": reason}, status=503)


async def prometheus_metrics(request: web.Request) -> web.Response:
    response = web.Response(body=request.app[METRICS].render())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


async def _always_ready() -> str | None:
    return None


def make_app(config: Config, relay: Relay, *, metrics: Metrics | None = None,
             readiness: Readiness = _always_ready) -> web.Application:
    """The aiohttp application; the caller owns the relay's start and stop."""
    app = web.Application(middlewares=[observe_middleware, errors_middleware,
                                       *guards.middlewares(config)],
                          client_max_size=config.max_body)
    app[CONFIG] = config
    app[RELAY] = relay
    app[METRICS] = metrics if metrics is not None else Metrics()
    app[READINESS] = readiness
    app[OPENAPI] = json.dumps(openapi.document(config), indent=1).encode()
    base = config.base_path.rstrip("/")
    for path in (base or "/", base + r"/{recipient:[\s\S]+}"):
        app.router.add_post(path, post_message)
        app.router.add_route("OPTIONS", path, options)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus_metrics)
    app.router.add_get("/openapi.json", openapi_json)
    return app
