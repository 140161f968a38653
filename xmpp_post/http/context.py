"""What the HTTP side keeps per application (app keys) and per request (log notes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from aiohttp import web

from xmpp_post.auth import Authenticator
from xmpp_post.config import Config
from xmpp_post.config.live import LiveConfig
from xmpp_post.metrics import Metrics
from xmpp_post.relay import Relay

Readiness = Callable[[], Awaitable[str | None]]  # None when ready, else the reason

CONFIG = web.AppKey("config", Config)
RELAY = web.AppKey("relay", Relay)  # type: ignore[type-abstract]
METRICS = web.AppKey("metrics", Metrics)
AUTH = web.AppKey("auth", Authenticator)
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")
LIVE = web.AppKey("live", LiveConfig)  # what a reload swaps: accounts, tokens, templates…

# What the handlers learn about the current request (sender, error code), for its log line.
NOTES: ContextVar[dict[str, str]] = ContextVar("request_notes")


def note(key: str, value: str) -> None:
    notes = NOTES.get(None)
    if notes is not None:
        notes[key] = value
