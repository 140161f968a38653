"""The first guard: a request that sends holds a delivery slot only once its body is in.

The body must arrive within ``client_timeout`` (else 408 ``client_too_slow``, connection
closed) and fit the largest limit of any request, with at most
``max_uploads_per_address`` bodies arriving from one client address at once (beyond:
429 ``too_many_uploads``). Only then does the request take one of the
``max_concurrent_requests`` slots (beyond: 503 ``busy`` with Retry-After) and go on to
the next guards (``then``), which hold it to its own limit once it is known who sends
(``body_limit``: a tool's payload, which a template renders, may be larger).

A body that may carry files (``uploads.upload_kind``) is not read here: it goes to
``files`` with the ``Limits`` (``arriving`` counts it against its address however slowly
it comes, ``slot`` is the delivery slot), which read it into the spool once its sender
is known, and proven (``guards``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from aiohttp.typedefs import Middleware

from xmpp_post import logs
from xmpp_post.config import Config
from xmpp_post.errors import (
    ClientGone,
    GatewayError,
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
    TooManyRequests,
)
from xmpp_post.http.clients import client_address, client_network
from xmpp_post.http.context import PAYLOADS, sends
from xmpp_post.http.uploads import upload_kind
from xmpp_post.model import Sender
from xmpp_post.templates import TEMPLATE_PARAMETER

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The guards behind the limits: (request, handler, body) -> the response.
Then = Callable[[web.Request, Handler, bytes], Awaitable[web.StreamResponse]]


class Limits:
    """The counts every request that sends is held to: bodies still arriving from each
    client address, and the delivery slots taken."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.active = 0
        self.uploads: dict[str, int] = {}  # client address -> bodies still arriving

    @contextlib.contextmanager
    def arriving(self, request: web.Request) -> Iterator[None]:
        """Count the body as arriving from its client's address while the block runs
        (unless it has arrived whole already); 429 when that address has too many."""
        if request.content.is_eof():
            yield
            return
        address = client_network(request)  # counted by IPv6 /64
        if self.uploads.get(address, 0) >= self.config.max_uploads_per_address:
            raise TooManyRequests(f"{self.uploads[address]} requests from this address are "
                                  "still sending their body", code="too_many_uploads",
                                  retry_after=self.config.retry_after)
        self.uploads[address] = self.uploads.get(address, 0) + 1
        try:
            yield
        finally:
            self.uploads[address] -= 1
            if not self.uploads[address]:
                del self.uploads[address]

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """One of the ``max_concurrent_requests`` delivery slots while the block runs."""
        if self.active >= self.config.max_concurrent_requests:
            raise Overloaded(f"the gateway is already handling {self.active} requests",
                             retry_after=self.config.retry_after)
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


# A body that may carry files: (request, handler, its kind, the limits) -> the response.
Files = Callable[[web.Request, Handler, str, Limits], Awaitable[web.StreamResponse]]


def limits_middleware(config: Config, then: Then, files: Files | None = None) -> Middleware:
    limits = Limits(config)

    @web.middleware
    async def limits_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not sends(request):
            return await handler(request)
        kind = upload_kind(request) if files is not None else None
        if kind is not None:
            assert files is not None
            return await files(request, handler, kind, limits)
        body = await _read_body(request, limits)  # before taking a delivery slot
        with limits.slot():
            return await then(request, handler, body)

    return limits_guard


def body_limit(request: web.Request, config: Config, found: Sender | GatewayError) -> int:
    """The largest body ``request`` may have: a tool's own payload, which a template
    renders (``?template=``, a token's template, a signed webhook, a route of
    ``PAYLOADS``), may be larger than a message."""
    templated = TEMPLATE_PARAMETER in request.query or (isinstance(found, Sender) and (
        found.scope.template is not None or found.via.startswith("webhook:"))) or (
        request.match_info.route in request.app[PAYLOADS])
    return config.max_template_body if templated else config.max_body


async def _read_body(request: web.Request, limits: Limits) -> bytes:
    """Read the body into the request (later reads return it) within client_timeout and
    the largest limit of any request (``body_limit`` is checked once it is known who
    sends), counting the bodies still arriving from each client address."""
    if not request.body_exists:
        return b""
    config = limits.config
    limit = max(config.max_body, config.max_template_body)
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is {request.content_length} bytes; "
                              f"the limit is {limit}")
    address = client_address(request)
    try:
        with limits.arriving(request):
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
