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
   ``sender_of`` hands the result to the others. A body that may carry files
   (``uploads.upload_kind``: multipart/form-data, ntfy's topic bodies) is authenticated
   first and its sender logged in by the throttle if not yet proven; only then is it
   read into the spool as it arrives (a sender's only), counted against
   ``max_uploads_per_address`` all the while, within ``max_file_size``, and only then
   does it take a delivery slot. Its spool goes once the request is answered, whatever
   happened.
2. ``throttle``: failed logins are counted and further guesses refused with 429
   before they reach the XMPP server (a ``state.LoginThrottle``), per real client
   address (``clients.client_address``); logins in flight count too, so concurrent
   guesses do not all get through. A sender whose password is not yet proven is
   logged in first (``Relay.login``), before any other work is done for the request
   (parsing, rendering a template): the outcome recorded is the XMPP server's answer to
   that login alone (``failed``: refused; ``succeeded``: accepted, and then only; else
   ``unknown``), whatever the request goes on to do. Credentials the
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
   well: GitLab gives every hook fired for one event the same id. A signed webhook
   (``POST /hooks/NAME``) is keyed by its scheme's id of the delivery only
   (``Sender.delivery``, scoped to the webhook): neither ``Idempotency-Key`` nor another
   id header can make a replay of a signed id new. With HTTP Basic, keys
   are scoped to the sender and the password it presented, and only an answer given
   once the XMPP server had accepted that password is stored (``VERIFIED``): a stranger
   guessing a password can neither read the owner's answers nor store one under the
   owner's key. A token or webhook the gateway has checked itself. Only the headers
   the gateway stores itself are replayed (``state.REPLAYED_HEADERS``), whatever a
   shared store hands back. A body with files is fingerprinted by the digest of its
   parts (``uploads``) and its media type, not the boundary: a retry uploads nothing
   twice.

Only routes that send messages are guarded (``context.SENDING``: ``POST <base>``,
``POST /hooks/NAME``, and ntfy's publish routes whatever their method), and the web
front's routes authenticated like a send (``POST /templates/NAME/render``,
``GET /web/status``); errors leave as
``GatewayError`` for ``app.observe_middleware`` to render. The state is injected
(``Guards``), so another implementation (shared by several instances) can be plugged in.
"""

from __future__ import annotations

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
    CredentialsRefused,
    GatewayError,
    LoginRefused,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
)
from xmpp_post.http.clients import client_address
from xmpp_post.http.context import RELAY, SPOOL, VERIFIED, error_shape, note, sends
from xmpp_post.http.errors import headers_of, render_error, status_of
from xmpp_post.http.request_limits import arriving, body_limit, read_body
from xmpp_post.http.uploads import SPOOLED, spool, upload_kind
from xmpp_post.model import Sender
from xmpp_post.state import (
    IdempotencyStore,
    LoginOutcome,
    LoginThrottle,
    StateKey,
    StoredAnswer,
    replayed,
    storable,
)

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

    def login(request: web.Request, handler: Handler, found: Sender | GatewayError) -> Handler:
        if isinstance(found, CredentialsRefused) or (
                isinstance(found, Sender) and not found.configured
                and not guards.verified(found)):
            handler = partial(throttle, handler=handler)
        return handler

    def deduplicate(request: web.Request, handler: Handler,
                    found: Sender | GatewayError) -> Handler:
        if _deduplicated(request, found):
            handler = partial(idempotent, handler=handler)
        return handler

    return [limits_middleware(config, guards.auth, Stages(login, deduplicate))]


def _deduplicated(request: web.Request, found: Sender | GatewayError) -> bool:
    if isinstance(found, Sender) and found.webhook:
        return found.delivery is not None
    return IDEMPOTENCY_HEADER in request.headers or delivery_id(request.headers) is not None


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
                     body=body, query_string=request.query_string)


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


Stage = Callable[[web.Request, Handler, "Sender | GatewayError"], Handler]


def _no_stage(_request: web.Request, handler: Handler, _found: Sender | GatewayError) -> Handler:
    return handler


@dataclass(frozen=True)
class Stages:
    """The guards behind ``limits``: ``login`` (the throttle, which logs a sender not yet
    proven in) wraps ``deduplicate`` (idempotency), which wraps the handler."""

    login: Stage = _no_stage
    deduplicate: Stage = _no_stage


def limits_middleware(config: Config, auth: Authenticator,
                      stages: Stages = Stages()) -> Middleware:
    """``stages``: the guards behind this one, for the request and its sender."""
    active = 0
    uploads: dict[str, int] = {}  # client address -> bodies still arriving from it

    async def handled(request: web.Request, handler: Handler, found: Sender | GatewayError,
                      body_size: int | None = None, logged_in: bool = False,
                      ) -> web.StreamResponse:
        nonlocal active
        if active >= config.max_concurrent_requests:
            raise Overloaded(f"the gateway is already handling {active} requests",
                             retry_after=config.retry_after)
        active += 1
        token = _SENDER.set(found)
        try:
            limit = body_limit(request, config, found)
            if body_size is not None and body_size > limit:
                raise PayloadTooLarge(f"the body is {body_size} bytes; the limit is {limit}")
            handler = stages.deduplicate(request, handler, found)
            if not logged_in:
                handler = stages.login(request, handler, found)
            return await handler(request)
        finally:
            _SENDER.reset(token)
            active -= 1

    @web.middleware
    async def limits(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not sends(request):
            return await handler(request)
        kind = upload_kind(request)
        if kind is None:
            body = await read_body(request, config, uploads)  # before taking a delivery slot
            found = _authenticate(auth, presented(request, body))
            return await handled(request, handler, found, len(body))
        # A body that may carry files: its sender first, logged in if not yet proven (no
        # file is read for nobody, nor for a password guess), then the body, spooled to
        # disk as it arrives, and only then a delivery slot.
        found = _authenticate(auth, presented(request))
        folder = None

        async def arrived(request: web.Request) -> web.StreamResponse:
            nonlocal folder
            if isinstance(found, Sender):
                folder = request.app[SPOOL].request_folder()
                with arriving(request, config, uploads):
                    request[SPOOLED] = await spool(request, kind, folder, config, found)
            return await handled(request, handler, found, logged_in=True)

        token = _SENDER.set(found)  # for the throttle
        try:
            return await stages.login(request, arrived, found)(request)
        finally:
            _SENDER.reset(token)
            if folder is not None:
                await folder.remove()

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
        outcome: LoginOutcome = "unknown"
        try:
            await request.app[RELAY].login(sender)  # before any work is spent on the request
            outcome = "succeeded"  # the one outcome that vouches for the password
            request[VERIFIED] = True
            return await handler(request)
        except LoginRefused:
            log.warning("failed login for %s from %s", sender.jid, logs.escape(address))
            outcome = "failed"
            raise
        finally:
            await throttle.end(sender.jid, address, proof, outcome)

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
        sender = _sender(request)
        if sender is not None and sender.webhook:
            value = sender.delivery  # the scheme's own id: nothing else
        elif (value := one_header(request, IDEMPOTENCY_HEADER)) is not None:
            validate_key(value)
        elif (delivery := delivery_id(request.headers)) is not None:
            value = f"{delivery} {request.path_qs}"  # one GitLab event id, several hooks
        if sender is None or value is None:
            return await handler(request)
        spooled = request.get(SPOOLED)
        if spooled is not None:  # a body with files: the digest of its parts, and its
            # media type without the boundary a client picks anew for each try
            body, content_type = spooled.digest, request.content_type
        else:
            body = await request.read()
            content_type = request.headers.get("Content-Type", "")
        fingerprint = guards.key.digest(request.method, request.path, request.query_string,
                                        content_type, body, sender.password)
        if sender.configured:  # the gateway checked the token or signature itself
            key = (sender.via, value)
        else:  # scoped to the password presented: another never meets these answers
            scope = guards.key.digest("idempotency", sender.jid, sender.password).hex()
            key = (f"{sender.jid} {scope}", value)
        stored = await store.claim(key, fingerprint)
        if stored is not None:
            return web.Response(body=stored.body, status=stored.status,
                                content_type=stored.content_type,
                                headers={**stored.replayed_headers(),
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
                                      tuple(replayed(headers_of(error).items()).items()))
            raise
        finally:
            await store.finish(key, answer)

    return idempotent
