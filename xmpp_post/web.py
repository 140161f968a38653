"""The HTTP API on aiohttp: routes, authentication, one error renderer, health.

``POST <base>`` and ``POST <base>/<recipient>`` send a message as the authenticated
user; ``OPTIONS`` describes what is accepted; ``GET /healthz`` reports liveness. Every
error, ours or aiohttp's, leaves through ``render_error`` in one JSON shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from xmpp_post import guards
from xmpp_post import request as parse
from xmpp_post.config import Config
from xmpp_post.errors import (
    GatewayError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from xmpp_post.relay import Relay

log = logging.getLogger(__name__)

CONFIG = web.AppKey("config", Config)
RELAY = web.AppKey("relay", Relay)  # type: ignore[type-abstract]
REALM = 'Basic realm="xmpp-post", charset="UTF-8"'
ALLOW = "POST, OPTIONS"

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
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as error:
        return render_error(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render_error(_translate(exc))
    except Exception:
        log.exception("unexpected error handling %s %s", request.method, request.path)
        return render_error(GatewayError("the gateway failed unexpectedly"))


def _media_type(request: web.Request) -> tuple[str, str | None]:
    if "Content-Type" not in request.headers:
        return "", None
    return request.content_type.lower(), request.charset


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is {request.content_length} bytes; "
                              f"the limit is {limit}")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes") from None


async def post_message(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    sender = parse.credentials(request.headers.get("Authorization"), config.domain)
    media_type, charset = _media_type(request)
    if media_type not in parse.MEDIA_TYPES:
        parse.message(media_type, charset, b"", None, sender)  # raises 415
    body = await _read_body(request, config.max_body)
    message = parse.message(media_type, charset, body, request.match_info.get("recipient"),
                            sender)
    receipt = await request.app[RELAY].deliver(sender, message)
    return web.json_response(receipt.as_json(), status=201)


async def options(request: web.Request) -> web.Response:
    return web.json_response(
        {"methods": ["POST"], "content_types": list(parse.MEDIA_TYPES),
         "fields": list(parse.FIELDS), "types": list(parse.MESSAGE_TYPES)},
        headers={"Allow": ALLOW, "Accept-Post": ", ".join(parse.MEDIA_TYPES)},
    )


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app(config: Config, relay: Relay) -> web.Application:
    """The aiohttp application; the caller owns the relay's start and stop."""
    app = web.Application(middlewares=[errors_middleware, *guards.middlewares(config)],
                          client_max_size=config.max_body)
    app[CONFIG] = config
    app[RELAY] = relay
    base = config.base_path.rstrip("/")
    for path in (base or "/", base + "/{recipient:.+}"):
        app.router.add_post(path, post_message)
        app.router.add_route("OPTIONS", path, options)
    app.router.add_get("/healthz", healthz)
    return app
