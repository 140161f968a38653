"""aiohttp middlewares in front of the message handler, outermost first:

1. ``limits``: at most ``max_concurrent_requests`` message requests at once (beyond:
   503 ``busy`` with Retry-After), and the body must arrive within ``client_timeout``
   (else 408, connection closed). A slow request head is cut off by aiohttp's
   keep-alive timer, which ``service`` sets to ``client_timeout``.
2. ``throttle``: failed logins are counted and further guesses refused with 429
   before they reach the XMPP server (``ratelimit.AuthThrottle``).
3. ``idempotency``: a retry with the same ``Idempotency-Key`` gets the first answer
   (``idempotency.IdempotencyStore``).

Only ``POST`` (message) requests are guarded; errors leave as ``GatewayError`` for
``web.errors_middleware`` to render.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from aiohttp import web
from aiohttp.typedefs import Middleware

from xmpp_post import idempotency
from xmpp_post import request as parse
from xmpp_post.config import Config
from xmpp_post.errors import (
    ClientError,
    GatewayError,
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
)
from xmpp_post.ratelimit import AuthThrottle

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middlewares(config: Config) -> list[Middleware]:
    throttle = AuthThrottle(window=config.auth_failure_window,
                            pair_limit=config.auth_failure_limit,
                            address_limit=config.auth_failure_limit_address,
                            account_limit=config.auth_failure_limit_account)
    store = idempotency.IdempotencyStore(window=config.idempotency_window,
                                         max_entries=config.idempotency_max_entries)
    return [limits_middleware(config), throttle_middleware(throttle, config.domain),
            idempotency_middleware(store, config.domain)]


# The current request's credentials, parsed once by ``limits`` and dropped when the
# request ends (so no password outlives its request): (header, credentials or error).
_PARSED: ContextVar[tuple[str | None, parse.Credentials | GatewayError]] = \
    ContextVar("credentials")


def sender_of(request: web.Request, domains: tuple[str, ...]) -> parse.Credentials:
    """The request's credentials (raising their ClientError), parsed once per request."""
    memo = _PARSED.get(None)
    if memo is None or memo[0] is not request.headers.get("Authorization"):
        memo = _parse(request, domains)
    if isinstance(memo[1], GatewayError):
        raise memo[1]
    return memo[1]


def _sender(request: web.Request, domains: tuple[str, ...]) -> parse.Credentials | None:
    try:
        return sender_of(request, domains)
    except GatewayError:
        return None  # the handler reports it


def limits_middleware(config: Config) -> Middleware:
    active = 0

    @web.middleware
    async def limits(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal active
        if request.method != "POST":
            return await handler(request)
        if active >= config.max_concurrent_requests:
            raise Overloaded(f"the gateway is already handling {active} requests",
                             retry_after=config.retry_after)
        active += 1
        token = _PARSED.set(_parse(request, config.domain))
        try:
            await _read_body(request, config)
            return await handler(request)
        finally:
            _PARSED.reset(token)
            active -= 1

    return limits


def _parse(request: web.Request, domains: tuple[str, ...],
           ) -> tuple[str | None, parse.Credentials | GatewayError]:
    header = request.headers.get("Authorization")
    try:
        return header, parse.credentials(header, domains)
    except GatewayError as error:
        return header, error


async def _read_body(request: web.Request, config: Config) -> None:
    """Read the body into the request (later reads return it) within client_timeout."""
    if not request.body_exists:
        return
    if request.content_length is not None and request.content_length > config.max_body:
        raise PayloadTooLarge(f"the body is {request.content_length} bytes; "
                              f"the limit is {config.max_body}")
    try:
        async with asyncio.timeout(config.client_timeout):
            await request.read()
    except TimeoutError:
        log.warning("client %s sent its body too slowly; cut off", request.remote)
        raise RequestTimeout(f"the body did not arrive within {config.client_timeout:g} s",
                             code="client_too_slow") from None
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body is larger than the limit of {config.max_body} "
                              "bytes") from None


def throttle_middleware(throttle: AuthThrottle, domains: tuple[str, ...]) -> Middleware:
    @web.middleware
    async def login_throttle(request: web.Request, handler: Handler) -> web.StreamResponse:
        sender = _sender(request, domains) if request.method == "POST" else None
        if sender is None:
            return await handler(request)
        address = request.remote or "unknown"
        throttle.check(sender.jid, address, sender.password)
        try:
            response = await handler(request)
        except Unauthorized as error:
            if error.code == "invalid_credentials":
                log.warning("failed login for %s from %s", sender.jid, address)
                throttle.failed(sender.jid, address)
            raise
        if 200 <= response.status < 300:
            throttle.succeeded(sender.jid, address, sender.password)
        return response

    return login_throttle


def idempotency_middleware(store: idempotency.IdempotencyStore,
                           domains: tuple[str, ...]) -> Middleware:
    secret = secrets.token_bytes(32)

    @web.middleware
    async def idempotent(request: web.Request, handler: Handler) -> web.StreamResponse:
        value = request.headers.get(idempotency.HEADER)
        if request.method != "POST" or value is None:
            return await handler(request)
        idempotency.validate_key(value)
        sender = _sender(request, domains)
        if sender is None:
            return await handler(request)
        body = await request.read()
        password = hmac.new(secret, sender.password.encode(), hashlib.sha256).digest()
        print_ = idempotency.fingerprint(
            request.method.encode(), request.path.encode(),
            request.headers.get("Content-Type", "").encode(), body, password)
        key = (sender.jid, value)
        stored = await store.claim(key, print_)
        if stored is not None:
            if stored.error is not None:
                raise stored.error
            return web.Response(body=stored.body, status=stored.status,
                                content_type=stored.content_type,
                                headers={"Idempotent-Replayed": "true"})
        answer: idempotency.StoredAnswer | None = None
        try:
            response = await handler(request)
            if isinstance(response, web.Response) and isinstance(response.body, bytes):
                answer = idempotency.StoredAnswer(response.status, response.body,
                                                  response.content_type)
            return response
        except ClientError as error:
            answer = idempotency.StoredAnswer(error.status, error=error)
            raise
        finally:
            store.finish(key, answer)

    return idempotent
