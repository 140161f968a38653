"""The HTTP connections under the application: aiohttp's, with three changes.

* **Half-closed clients get their answer.** A client that sends its whole request and
  then shuts down its sending side (``nc -N``, socat, some embedded clients) is still
  reading. asyncio closes a connection on end-of-file unless the protocol says
  otherwise; here the requests already received are answered first, then the
  connection closes. A body cut short by the end-of-file fails at once (400
  ``incomplete_body``) instead of waiting for ``client_timeout``.
* **Parser refusals in the JSON shape, without echoing the request.** aiohttp answers a
  request it cannot parse (a header over ``max_header_size``, bare ``\\n`` line endings,
  a malformed request line) with plain text that quotes the raw request, credentials
  included. Here they are ``{"error", "message"}`` naming only the problem, and logged
  as one warning line.
* **Only ``Expect: 100-continue``.** aiohttp answers another ``Expect`` with plain text
  quoting it (and fails with a 500 when it is not UTF-8); here it is a JSON 417.
* ``GatewayRunner`` is ``web.AppRunner`` serving connections with that protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from xmpp_post import logs
from xmpp_post.errors import BadRequest, GatewayError, HeaderTooLarge
from xmpp_post.http.render import HttpStatusError, render_error

log = logging.getLogger(__name__)


def incomplete_body() -> BadRequest:
    return BadRequest("the connection was shut down before the whole body arrived",
                      code="incomplete_body")


class GatewayProtocol(RequestHandler):
    """One HTTP connection; see the module docstring."""

    _client_done = False  # the client has shut down its sending side
    _latest_payload: StreamReader | None = None  # the body of the last request parsed

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._messages:
            self._latest_payload = self._messages[-1][1]

    def eof_received(self) -> bool:  # type: ignore[override]  # asyncio: bool | None
        self._client_done = True
        waiter = self._waiter
        if not self._messages and waiter is not None and not waiter.done():
            return False  # idle: nothing to answer, let the transport close
        payload = self._latest_payload  # only the last request's body can be unfinished
        if payload is not None and not payload.is_eof():
            payload.set_exception(incomplete_body())
            payload.feed_eof()  # nothing more will come: no lingering for it either
        if not self._messages:
            self.close()  # the request being handled is the last one
        return True  # keep the transport open to write the answers

    async def finish_response(self, request: web.BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        answered = await super().finish_response(request, resp, start_time)
        if self._client_done and not self._messages:
            self.close()  # that was the last request the client sent
        return answered

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already started")
        error: GatewayError
        if isinstance(exc, LineTooLong):
            error = HeaderTooLarge("the request line or a header field is longer than the "
                                   "gateway accepts (max_header_size)")
        elif status == 400:
            error = BadRequest("the request is not valid HTTP/1.1 "
                               f"({type(exc).__name__ if exc else 'malformed'})",
                               code="malformed_request")
        elif status == 500:
            log.error("unexpected error handling a request", exc_info=exc)
            error = GatewayError("the gateway failed unexpectedly")
        else:
            error = HttpStatusError("the request could not be handled in time", status)
        if status < 500:
            # Anything but HTTP (a TLS handshake, a scanner) as a first request: routine.
            noise = self._request_count == 1 and isinstance(exc, BadHttpMethod)
            logs.event(log, "malformed_request", logging.DEBUG if noise else logging.WARNING,
                       error=error.code, problem=type(exc).__name__ if exc else "-",
                       peer=request.remote)
        response = render_error(error)
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return GatewayProtocol(self, loop=self._loop, **self._kwargs)


Handle = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def _only_continue(handle: Handle) -> Handle:
    """Refuse an ``Expect`` other than 100-continue before aiohttp's own handling of it."""

    async def handle_request(request: web.BaseRequest) -> web.StreamResponse:
        expect = request.headers.get("Expect")
        if expect is not None and expect.strip().lower() != "100-continue":
            return render_error(HttpStatusError("the only Expect supported is 100-continue",
                                                417))
        return await handle(request)

    return handle_request


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections are ``GatewayProtocol``s."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The application's own server, made to create our protocol per connection
        # (aiohttp builds it inside Application; this is its one point of variation).
        server.__class__ = _Server
        server.request_handler = _only_continue(server.request_handler)
        return server
