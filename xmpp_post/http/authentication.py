"""Who sends the current request: authenticated once, over its body, by the guards
(``guards.middlewares``), and read by the guards behind and the handlers.

The result (a ``Sender``, or the error that refused the credentials) lives in a context
variable set for the request alone, so no password outlives the request that brought it.
``sender_of`` gives it to a handler, raising the refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from aiohttp import web

from xmpp_post.auth import Authenticator, Presented
from xmpp_post.errors import CredentialsRefused, GatewayError, RateLimited
from xmpp_post.http.context import note
from xmpp_post.model import Sender

_SENDER: ContextVar[Sender | GatewayError | None] = ContextVar("sender", default=None)


def presented(request: web.Request, body: bytes = b"") -> Presented:
    return Presented(authorization=tuple(request.headers.getall("Authorization", ())),
                     path=request.path, headers=request.headers, query=request.query,
                     body=body, query_string=request.query_string)


def authenticate(auth: Authenticator, what: Presented) -> Sender | GatewayError:
    try:
        sender = auth.authenticate(what)
    except (CredentialsRefused, RateLimited) as error:
        note("via", error.subject)  # for the metrics of a token or webhook
        return error
    except GatewayError as error:
        return error
    note("via", sender.via)
    return sender


@contextmanager
def sending_as(found: Sender | GatewayError) -> Iterator[None]:
    """The current request's sender (or refusal) while the block runs."""
    token = _SENDER.set(found)
    try:
        yield
    finally:
        _SENDER.reset(token)


def sender_of(request: web.Request) -> Sender:
    """The request's sender, authenticated once by the guards (raising its ClientError)."""
    found = _SENDER.get()
    if isinstance(found, GatewayError):
        raise found
    if not isinstance(found, Sender):
        raise RuntimeError("the request was not authenticated by the guards")
    return found


def current_sender() -> Sender | None:
    """The request's sender, or None (not authenticated yet, or refused)."""
    found = _SENDER.get()
    return found if isinstance(found, Sender) else None


def current_sender_or_refusal() -> Sender | GatewayError | None:
    """The request's sender, or the error that refused its credentials; None before
    the guards authenticated it."""
    return _SENDER.get()
