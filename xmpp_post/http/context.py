"""What the HTTP side keeps per application (app keys) and per request (log notes).

A front (one way in: ``xmpp_post.fronts``) is handed to the application as a ``Front``:
its routes and its part of the OpenAPI document. Routes are marked in app-wide tables:
``SENDING``, the routes that send messages, or are authenticated as if they did (the
guards apply to these, whatever their method); ``PAYLOADS``, the routes whose body is a
tool's own payload (held to ``max_template_body``); ``UPLOAD_ROUTES``, the sending routes
whose body may carry files (``uploads``: ``form`` or ``body``); and ``ERROR_SHAPES``, the
resources whose errors carry members of their own (ntfy's ``http`` and ``code``).
``ERROR_WATCHERS`` are told of every error answered (the web front's status view counts
them); none by default. ``SPOOL`` is where the files of requests wait (``spool``).
``SENT_WATCHERS`` are told of every templated message the XMPP server took
(``TemplatedSent``: the bot's alert actions remember which message carried which alert
group); none by default.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource, AbstractRoute

from xmpp_post.auth import Authenticator
from xmpp_post.config import Config
from xmpp_post.config.live import LiveConfig
from xmpp_post.errors import GatewayError
from xmpp_post.http.openapi import OpenApiPart
from xmpp_post.http.spool import SpoolDir
from xmpp_post.metrics import Metrics
from xmpp_post.model import Receipt
from xmpp_post.relay import Relay

Readiness = Callable[[], Awaitable[str | None]]  # None when ready, else the reason
ErrorShape = Callable[[GatewayError, int], dict[str, object]]  # (error, status) -> body
ErrorWatcher = Callable[[web.Request, GatewayError, int], None]  # (request, error, status)


@dataclass(frozen=True)
class TemplatedSent:
    """A templated request's messages that the XMPP server took: who sent them, the
    template (``builtin``: the gateway's own, not a file of ``template_dir``), the tool's
    parsed payload, the text sent and one receipt per recipient that got it."""

    sender: str
    template: str
    builtin: bool
    payload: Any
    body: str
    receipts: tuple[Receipt, ...]


SentWatcher = Callable[[TemplatedSent], Awaitable[None]]  # must not raise


@dataclass(frozen=True)
class Front:
    """One way in, as the application takes it: ``add_routes(app, config)`` puts its
    routes on the app (marking those that send in ``SENDING``); ``openapi(config,
    templates)`` describes them (``templates``: the loaded templates' descriptions)."""

    name: str
    add_routes: Callable[[web.Application, Config], None]
    openapi: Callable[[Config, Mapping[str, str]], OpenApiPart]


CONFIG = web.AppKey("config", Config)
RELAY = web.AppKey("relay", Relay)  # type: ignore[type-abstract]
METRICS = web.AppKey("metrics", Metrics)
AUTH = web.AppKey("auth", Authenticator)
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")
LIVE = web.AppKey("live", LiveConfig)  # what a reload swaps: accounts, tokens, templates…
SENDING: web.AppKey[set[AbstractRoute]] = web.AppKey("sending")
ERROR_SHAPES: web.AppKey[dict[AbstractResource, ErrorShape]] = web.AppKey("error_shapes")
UPLOAD_ROUTES: web.AppKey[dict[AbstractRoute, str]] = web.AppKey("upload_routes")
SPOOL = web.AppKey("spool", SpoolDir)  # where the files of requests wait
DEGRADATION: web.AppKey[Readiness] = web.AppKey("degradation")  # None, or what fails
FRONTS: web.AppKey[tuple[Front, ...]] = web.AppKey("fronts")
PAYLOADS: web.AppKey[set[AbstractRoute]] = web.AppKey("payloads")
ERROR_WATCHERS: web.AppKey[list[ErrorWatcher]] = web.AppKey("error_watchers")
SENT_WATCHERS: web.AppKey[list[SentWatcher]] = web.AppKey("sent_watchers")

# Set on a request once the XMPP server has accepted its sender's password (a message was
# delivered, or refused after the login): only then may its answer be stored for retries.
VERIFIED = web.RequestKey("verified", bool)

# What the handlers learn about the current request (sender, error code), for its log line.
NOTES: ContextVar[dict[str, str]] = ContextVar("request_notes")


def note(key: str, value: str) -> None:
    notes = NOTES.get(None)
    if notes is not None:
        notes[key] = value


def sends(request: web.Request) -> bool:
    """Whether the request's route sends messages (and so is guarded)."""
    return request.match_info.route in request.app[SENDING]


def error_shape(request: web.Request) -> ErrorShape | None:
    """How the request's route shapes its errors; None: the gateway's own shape."""
    resource = request.match_info.route.resource
    return request.app[ERROR_SHAPES].get(resource) if resource is not None else None
