"""The guards in front of the message handler, outermost first (one aiohttp middleware,
``middlewares``, runs the others only for the requests they have work for):

1. ``limits``: the body must arrive within ``client_timeout`` (else 408, connection
   closed) and fit ``max_body`` (``max_template_body`` when a template renders it: a
   tool's own payload; else 413), with at most ``max_uploads_per_address`` bodies
   arriving from one client address at once (beyond: 429 ``too_many_uploads``). Only
   then does the request take one of the ``max_concurrent_requests`` slots (beyond: 503
   ``busy`` with Retry-After): a client that has not sent its request holds no slot
   meant for delivering messages. A slow request head is cut off by aiohttp's
   keep-alive timer, which ``service`` sets to ``client_timeout`` (``limits``).
   The request is then authenticated, once, over its body (a webhook's signature
   covers it), and held to its own body limit, which depends on who sends
   (``authentication``: ``sender_of`` hands the result to the others).
   A body that may carry files (``uploads.upload_kind``: multipart/form-data, ntfy's
   topic bodies) is authenticated first, and its sender logged in by the throttle if not
   yet proven; only then is it read into the spool as it arrives (a sender's only),
   counted against ``max_uploads_per_address`` all the while, within
   ``max_file_size``, and only then does it take a delivery slot (``with_files``). Its
   spool goes once the request is answered, whatever happened.
2. ``login_throttle``: failed logins are counted and further guesses refused with 429
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
(``Guards``), so another implementation (shared by several instances) can be plugged in;
this module puts the guards together (``middlewares``), each lives in its own module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from aiohttp import web
from aiohttp.typedefs import Middleware

from xmpp_post.auth import Authenticator
from xmpp_post.auth.webhooks import delivery_id
from xmpp_post.config import Config
from xmpp_post.errors import CredentialsRefused, GatewayError, PayloadTooLarge
from xmpp_post.http.authentication import authenticate, presented, sending_as
from xmpp_post.http.context import SPOOL
from xmpp_post.http.idempotency import IDEMPOTENCY_HEADER, idempotency_middleware
from xmpp_post.http.login_throttle import throttle_middleware
from xmpp_post.http.request_limits import Handler, Limits, body_limit, limits_middleware
from xmpp_post.http.spool import RequestFolder
from xmpp_post.http.uploads import SPOOLED, spool
from xmpp_post.model import Sender
from xmpp_post.state import IdempotencyStore, LoginThrottle, StateKey


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
    """One aiohttp middleware: ``limits``, which hands the request, once its body is in
    and it holds a slot, to ``guarded``: authenticated, held to its own body limit, and
    passed on through the throttle and idempotency guards that have something to do for
    it (a guard with nothing to do, for a sender an open session proved, without a key,
    is no await). A body that may carry files goes to ``with_files`` instead: its sender
    authenticated and logged in first, then its body spooled, then a slot."""
    throttle = throttle_middleware(guards.throttle, guards.key, guards.verified)
    idempotent = idempotency_middleware(guards.idempotency, guards.key)

    def deduplicated(request: web.Request, handler: Handler,
                     found: Sender | GatewayError) -> Handler:
        return (partial(idempotent, handler=handler) if _deduplicated(request, found)
                else handler)

    def throttled(handler: Handler, found: Sender | GatewayError) -> Handler:
        if isinstance(found, CredentialsRefused) or (
                isinstance(found, Sender) and not found.configured
                and not guards.verified(found)):
            return partial(throttle, handler=handler)
        return handler

    async def guarded(request: web.Request, handler: Handler,
                      body: bytes) -> web.StreamResponse:
        found = authenticate(guards.auth, presented(request, body))
        with sending_as(found):
            limit = body_limit(request, config, found)
            if len(body) > limit:
                raise PayloadTooLarge(f"the body is {len(body)} bytes; the limit is {limit}")
            return await throttled(deduplicated(request, handler, found), found)(request)

    async def with_files(request: web.Request, handler: Handler, kind: str,
                         limits: Limits) -> web.StreamResponse:
        found = authenticate(guards.auth, presented(request))  # no body needed to know
        folder: RequestFolder | None = None

        async def arrived(request: web.Request) -> web.StreamResponse:
            nonlocal folder
            if isinstance(found, Sender):  # no file is read for nobody
                folder = request.app[SPOOL].request_folder()
                with limits.arriving(request):
                    request[SPOOLED] = await spool(request, kind, folder, config, found)
            with limits.slot():
                return await deduplicated(request, handler, found)(request)

        with sending_as(found):
            try:  # the throttle's login (if any) before a byte of the body is read
                return await throttled(arrived, found)(request)
            finally:
                if folder is not None:
                    await folder.remove()

    return [limits_middleware(config, guarded, with_files)]


def _deduplicated(request: web.Request, found: Sender | GatewayError) -> bool:
    if isinstance(found, Sender) and found.webhook:
        return found.delivery is not None
    return IDEMPOTENCY_HEADER in request.headers or delivery_id(request.headers) is not None
