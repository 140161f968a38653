"""The limits every request that sends is held to while its body arrives, before it
takes a delivery slot (``guards.limits_middleware`` puts them together).

``read_body`` reads a body into memory within ``client_timeout`` (else 408
``client_too_slow``) and the largest limit of any request; ``body_limit`` is the
request's own, once it is known who sends (a tool's payload, which a template renders,
may be larger than a message). ``arriving`` counts the bodies still arriving from each
client address, files too, however slowly they come: at most
``max_uploads_per_address`` (beyond: 429 ``too_many_uploads``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from aiohttp import web

from xmpp_post import logs
from xmpp_post.config import Config
from xmpp_post.errors import (
    ClientGone,
    GatewayError,
    PayloadTooLarge,
    RequestTimeout,
    TooManyRequests,
)
from xmpp_post.http.clients import client_address
from xmpp_post.http.context import PAYLOADS
from xmpp_post.http.templated import TEMPLATE_PARAMETER
from xmpp_post.model import Sender

log = logging.getLogger(__name__)


def body_limit(request: web.Request, config: Config, found: Sender | GatewayError) -> int:
    """The largest body ``request`` may have: a tool's own payload, which a template
    renders (``?template=``, a token's template, a signed webhook, a route of
    ``PAYLOADS``), may be larger than a message."""
    templated = TEMPLATE_PARAMETER in request.query or (isinstance(found, Sender) and (
        found.scope.template is not None or found.via.startswith("webhook:"))) or (
        request.match_info.route in request.app[PAYLOADS])
    return config.max_template_body if templated else config.max_body


@contextlib.contextmanager
def arriving(request: web.Request, config: Config, uploads: dict[str, int]) -> Iterator[None]:
    """Count the body as arriving from its client's address while the block runs
    (unless it has arrived whole already); 429 when that address has too many."""
    address = client_address(request)
    if request.content.is_eof():
        yield
        return
    if uploads.get(address, 0) >= config.max_uploads_per_address:
        raise TooManyRequests(f"{uploads[address]} requests from this address are still "
                              "sending their body", code="too_many_uploads",
                              retry_after=config.retry_after)
    uploads[address] = uploads.get(address, 0) + 1
    try:
        yield
    finally:
        uploads[address] -= 1
        if not uploads[address]:
            del uploads[address]


async def read_body(request: web.Request, config: Config, uploads: dict[str, int]) -> bytes:
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
    try:
        with arriving(request, config, uploads):
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
