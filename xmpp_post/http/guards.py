"""The guards in front of the message handler, outermost first (one aiohttp middleware,
``middlewares``, runs the others only for the requests they have work for):

1. ``limits``: the body must arrive within ``client_timeout`` (else 408, connection
   closed) and fit ``max_body`` (``max_template_body`` when a template renders it: a
   tool's own payload; else 413), with at most ``max_uploads_per_address`` bodies
   arriving from one client address at once (beyond: 429 ``too_many_uploads``). Only
   then does the request take one of the ``max_concurrent_requests`` slots (beyond: 503
   ``busy`` with Retry-After): a client that has not sent its request holds no slot
   meant for delivering messages. A slow request head is cut off by aiohttp's
   keep-alive timer, which ``service`` sets to ``client_timeout``. The request is
   authenticated here, once, over its body (a webhook's signature covers it);
   ``sender_of`` hands the result to the others.
2. ``throttle``: failed logins are counted and further guesses refused with 429
   before they reach the XMPP server (a ``state.LoginThrottle``), per real client
   address (``clients.client_address``); logins in flight count too, so concurrent
   guesses do not all get through. Credentials the
   gateway refuses itself (an unknown token, a bad webhook signature) count as failed
   logins of the client address under a subject of their own (``token``,
   ``webhook:NAME``). A valid token or webhook is not throttled: the gateway checked it,
   and its account's refused login is the operator's problem, not the caller's. Nor is
   a sender whose password an open session already proved (``Guards.verified``): the
   request is no login, so no guess (and costs the shared state nothing; it works while
   that state is unavailable).
3. ``idempotency``: a retry with the same ``Idempotency-Key`` gets the first answer
   (a ``state.IdempotencyStore``). Without that header, a tool's own delivery id
   (``X-GitHub-Delivery``, ``X-Gitea-Delivery``, ``X-Forgejo-Delivery``,
   ``X-Gitlab-Event-UUID``, ``webhook-id``) is the key, scoped to the path and query as
   well: GitLab gives every hook fired for one event the same id. With HTTP Basic, keys
   are scoped to the sender and the password it presented, and only an answer given
   once the XMPP server had accepted that password is stored (``VERIFIED``): a stranger
   guessing a password can neither read the owner's answers nor store one under the
   owner's key. A token or webhook the gateway has checked itself.

Only routes that send messages are guarded (``context.SENDING``: ``POST <base>``,
``POST /hooks/NAME``, and ntfy's publish routes whatever their method); errors leave as
``GatewayError`` for ``app.observe_middleware`` to render. The state is injected
(``Guards``), so another implementation (shared by several instances) can be plugged in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial

from aiohttp import web
from aiohttp.typedefs import Middleware

from xmpp_post import logs
from xmpp_post.auth import Authenticator, Presented
from xmpp_post.auth.webhooks import delivery_id
from xmpp_post.config import Config
from xmpp_post.errors import (
    BadRequest,
    ClientGone,
    CredentialsRefused,
    GatewayError,
    LoginRefused,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    TooManyRequests,
)
from xmpp_post.http.clients import client_address
from xmpp_post.http.context import VERIFIED, error_shape, note, sends
from xmpp_post.http.render import render_error, status_of
from xmpp_post.model import Sender
from xmpp_post.state import IdempotencyStore, LoginThrottle, StateKey, StoredAnswer, storable
from xmpp_post.templates import TEMPLATE_PARAMETER

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# The current request's Sender (or the error that refused it), set once by ``limits`` and
# gone with the request, so no password outlives the request that brought it.
_SENDER: ContextVar[Sender | GatewayError | None] = ContextVar("sender", default=None)


def _never_verified(_sender: Sender) -> bool:
    return False


@dataclass(frozen=True)
class Guards:
    """What the guards need: who is sending, and the state they keep. ``verified``
    tells whether a sender's password is already proven by an open session."""

    auth: Authenticator
    throttle: LoginThrottle
    idempotency: IdempotencyStore
    key: StateKey
    verified: Callable[[Sender], bool] = _never_verified


def middlewares(config: Config, guards: Guards) -> list[Middleware]:
    """One aiohttp middleware: ``limits``, which hands the request on through the
    throttle and idempotency guards that have something to do for it (a guard with
    nothing to do, for a sender an open session proved, without a key, is no await)."""
    throttle = throttle_middleware(guards)
    idempotent = idempotency_middleware(guards)

    def stages(request: web.Request, handler: Handler, found: Sender | GatewayError) -> Handler:
        if IDEMPOTENCY_HEADER in request.headers or delivery_id(request.headers) is not None:
            handler = partial(idempotent, handler=handler)
        if isinstance(found, CredentialsRefused) or (
                isinstance(found, Sender) and not found.configured
                and not guards.verified(found)):
            handler = partial(throttle, handler=handler)
        return handler

    return [limits_middleware(config, guards.auth, stages)]


def one_header(request: web.Request, name: str) -> str | None:
    """The value of a header the gateway acts on; given twice, the request is refused
    (another party on the path might have acted on the other value)."""
    values = request.headers.getall(name, ())
    if len(values) > 1:
        raise BadRequest(f"the request has more than one {name} header",
                         code="duplicate_header")
    return values[0] if values else None


def presented(request: web.Request, body: bytes = b"") -> Presented:
    return Presented(authorization=tuple(request.headers.getall("Authorization", ())),
                     path=request.path, headers=request.headers, query=request.query,
                     body=body)


def sender_of(request: web.Request) -> Sender:
    """The request's sender, authenticated once by ``limits`` (raising its ClientError)."""
    found = _SENDER.get()
    if isinstance(found, GatewayError):
        raise found
    if not isinstance(found, Sender):
        raise RuntimeError("the request was not authenticated by the limits guard")
    return found


def _sender(request: web.Request) -> Sender | None:
    found = _SENDER.get()
    return found if isinstance(found, Sender) else None


Stages = Callable[[web.Request, Handler, "Sender | GatewayError"], Handler]


def limits_middleware(config: Config, auth: Authenticator,
                      stages: Stages | None = None) -> Middleware:
    """``stages``: the guards behind this one, for the request and its sender."""
    active = 0
    uploads: dict[str, int] = {}  # client address -> bodies still arriving from it

    @web.middleware
    async def limits(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal active
        if not sends(request):
            return await handler(request)
        body = await _read_body(request, config, uploads)  # before taking a delivery slot
        if active >= config.max_concurrent_requests:
            raise Overloaded(f"the gateway is already handling {active} requests",
                             retry_after=config.retry_after)
        active += 1
        token = _SENDER.set(None)
        try:
            found = _authenticate(auth, presented(request, body))
            _SENDER.set(found)
            limit = body_limit(request, config, found)
            if len(body) > limit:
                raise PayloadTooLarge(f"the body is {len(body)} bytes; the limit is {limit}")
            if stages is not None:
                handler = stages(request, handler, found)
            return await handler(request)
        finally:
            _SENDER.reset(token)
            active -= 1

    return limits


def _authenticate(auth: Authenticator, what: Presented) -> Sender | GatewayError:
    try:
        sender = auth.authenticate(what)
    except (CredentialsRefused, RateLimited) as error:
        note("via", error.subject)  # for the metrics of a token or webhook
        return error
    except GatewayError as error:
        return error
    note("via", sender.via)
    return sender


def body_limit(request: web.Request, config: Config, found: Sender | GatewayError) -> int:
    """The largest body ``request`` may have: a tool's own payload, which a template
    renders (``?template=``, a token's template, a signed webhook), may be larger than a
    message."""
    templated = TEMPLATE_PARAMETER in request.query or (isinstance(found, Sender) and (
        found.scope.template is not None or found.via.startswith("webhook:")))
    return config.max_template_body if templated else config.max_body


async def _read_body(request: web.Request, config: Config, uploads: dict[str, int]) -> bytes:
    """Read the body into the request (later reads return it) within client_timeout and
    the largest limit of any request (``body_limit`` is checked once it is known who
    sends), counting the bodies still arriving from each client address."""
    if not request.body_exists:
        return b""
    limit = max(config.max_body, config.max_template_body)
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is {request.content_length} bytes; "
                              f"the limit is {limit}")
    address = client_address(request)
    waiting = not request.content.is_eof()  # else it has arrived whole already
    if waiting:
        if uploads.get(address, 0) >= config.max_uploads_per_address:
            raise TooManyRequests(f"{uploads[address]} requests from this address are still "
                                  "sending their body", code="too_many_uploads",
                                  retry_after=config.retry_after)
        uploads[address] = uploads.get(address, 0) + 1
    try:
        if request.content.is_eof():  # all of it is here already: no timer needed
            return await request.read()
        async with asyncio.timeout(config.client_timeout):
            return await request.read()
    except TimeoutError:
        log.warning("client %s sent its body too slowly; cut off", logs.escape(address))
        raise RequestTimeout(f"the body did not arrive within {config.client_timeout:g} s",
                             code="client_too_slow") from None
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes") \
            from None
    except ConnectionError:  # the client went away mid-body: not the gateway's failure
        raise ClientGone("the client disconnected before its body arrived") from None
    finally:
        if waiting:
            uploads[address] -= 1
            if not uploads[address]:
                del uploads[address]


def throttle_middleware(guards: Guards) -> Middleware:
    throttle = guards.throttle

    @web.middleware
    async def login_throttle(request: web.Request, handler: Handler) -> web.StreamResponse:
        found = _SENDER.get() if sends(request) else None
        address = client_address(request)
        if isinstance(found, CredentialsRefused):
            proof = guards.key.digest("refused", found.subject)
            await throttle.begin(found.subject, address, proof)  # 429 once locked
            log.warning("refused credentials (%s) from %s", logs.escape(found.subject),
                        logs.escape(address))
            await throttle.end(found.subject, address, proof, "failed")
            return await handler(request)
        sender = found if isinstance(found, Sender) else None
        if sender is None or sender.configured or guards.verified(sender):
            return await handler(request)
        proof = guards.key.digest("login", sender.jid, sender.password)
        await throttle.begin(sender.jid, address, proof)
        try:
            response = await handler(request)
        except LoginRefused:
            log.warning("failed login for %s from %s", sender.jid, logs.escape(address))
            await throttle.end(sender.jid, address, proof, "failed")
            raise
        except BaseException:
            await throttle.end(sender.jid, address, proof, "unknown")
            raise
        await throttle.end(sender.jid, address, proof,
                           "succeeded" if 200 <= response.status < 300 else "unknown")
        return response

    return login_throttle


def validate_key(value: str) -> str:
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise BadRequest(f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable "
                         "ASCII characters", code="invalid_idempotency_key")
    return value


def idempotency_middleware(guards: Guards) -> Middleware:
    store = guards.idempotency

    @web.middleware
    async def idempotent(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not sends(request):
            return await handler(request)
        value = one_header(request, IDEMPOTENCY_HEADER)
        if value is not None:
            validate_key(value)
        elif (delivery := delivery_id(request.headers)) is not None:
            value = f"{delivery} {request.path_qs}"  # one GitLab event id, several hooks
        else:
            return await handler(request)
        sender = _sender(request)
        if sender is None:
            return await handler(request)
        body = await request.read()
        fingerprint = guards.key.digest(
            request.method, request.path, request.query_string,
            request.headers.get("Content-Type", ""), body, sender.password)
        if sender.configured:  # the gateway checked the token or signature itself
            key = (sender.via, value)
        else:  # scoped to the password presented: another never meets these answers
            scope = guards.key.digest("idempotency", sender.jid, sender.password).hex()
            key = (f"{sender.jid} {scope}", value)
        stored = await store.claim(key, fingerprint)
        if stored is not None:
            return web.Response(body=stored.body, status=stored.status,
                                content_type=stored.content_type,
                                headers={**dict(stored.headers),
                                         "Idempotent-Replayed": "true"})
        answer: StoredAnswer | None = None
        try:
            response = await handler(request)
            if ((sender.configured or request.get(VERIFIED))
                    and isinstance(response, web.Response)
                    and isinstance(response.body, bytes)):
                answer = StoredAnswer(response.status, response.body, response.content_type)
            return response
        except GatewayError as error:
            if (sender.configured or error.verified) and storable(status_of(error)):
                rendered = render_error(error, shape=error_shape(request))
                assert isinstance(rendered.body, bytes)
                answer = StoredAnswer(rendered.status, rendered.body, rendered.content_type,
                                      tuple(error.headers.items()))
            raise
        finally:
            await store.finish(key, answer)

    return idempotent
