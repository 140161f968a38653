"""``GET /web/status``: the gateway's state, for its admins.

Who may see it is the ``admin`` setting: a token's name (the request comes with that
token) or an account's JID (the request comes with that account's own password, which a
login to the XMPP server proves first). Anyone else with valid credentials gets 403
``not_admin``; the request is authenticated and throttled like a send.

The answer holds no message text and no secret::

    {"sessions": {"open": 2, "max": 1000,
                  "list": [{"jid", "in_flight", "age_seconds", "idle_seconds"}]},
     "refusals": {"window_seconds": 3600, "recent": {"code": n}, "since_start": {...}},
     "errors": [{"time", "level", "logger", "message"}]}

``refusals`` counts the error answers by code word (``Refusals``, told of each by the
application's error watchers); ``errors`` are the last warnings and errors the
gateway logged (``LogTail``), which never hold a password or a message's text (see
``xmpp_post.logs``). Bots and their queues will be listed under ``bots`` once the
gateway has bots; until then the member is absent and the page shows no such section.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from xmpp_post import logs
from xmpp_post.config import Config
from xmpp_post.errors import Forbidden, GatewayError
from xmpp_post.fronts.web.web_page import secured
from xmpp_post.http.authentication import sender_of
from xmpp_post.http.context import CONFIG, ERROR_WATCHERS, RELAY, SENDING, VERIFIED, note
from xmpp_post.model import Sender
from xmpp_post.templates.text import shorten

ROUTE = "/web/status"
WINDOW = 3600.0  # seconds of "recent" refusals
KEPT_REFUSALS = 10_000  # the most recent ones counted; a flood counts as at least this
KEPT_ERRORS = 20
MAX_ERROR_TEXT = 500


class Refusals:
    """Error answers by code: in the last ``window`` seconds, and since start (code words
    come from a fixed registry, so the totals stay small)."""

    def __init__(self, window: float = WINDOW, kept: int = KEPT_REFUSALS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._recent: deque[tuple[float, str]] = deque(maxlen=kept)
        self._total: Counter[str] = Counter()

    def watch(self, _request: web.Request, error: GatewayError, _status: int) -> None:
        self._recent.append((self._clock(), error.code))
        self._total[error.code] += 1

    def snapshot(self) -> dict[str, object]:
        since = self._clock() - self.window
        while self._recent and self._recent[0][0] < since:
            self._recent.popleft()
        recent = Counter(code for _, code in self._recent)
        return {"window_seconds": self.window, "recent": dict(recent.most_common()),
                "since_start": dict(self._total.most_common())}


class LogTail(logging.Handler):
    """The last warnings and errors logged, as one line of text each (no traceback)."""

    def __init__(self, kept: int = KEPT_ERRORS) -> None:
        super().__init__(logging.WARNING)
        self.lines: deque[dict[str, str]] = deque(maxlen=kept)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            fields = getattr(record, "fields", None)
            if isinstance(fields, dict):
                text = " ".join([text, *(f"{key}={value}" for key, value in fields.items())])
            self.lines.append({
                "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="seconds"),
                "level": record.levelname.lower(), "logger": record.name,
                "message": shorten(logs.escape(text), MAX_ERROR_TEXT)})
        except Exception:
            self.handleError(record)


REFUSALS = web.AppKey("web_refusals", Refusals)
LOG_TAIL = web.AppKey("web_log_tail", LogTail)
WATCHED = "xmpp_post"  # the logger whose warnings are kept


def is_admin(sender: Sender, admins: tuple[str, ...]) -> bool:
    """A token listed by name, or an account listed by JID using its own password."""
    if sender.via == "basic":
        return sender.jid in admins
    kind, _, name = sender.via.partition(":")
    return kind == "token" and name in admins


async def get_status(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    relay = request.app[RELAY]
    sender = sender_of(request)
    note("sender", sender.jid)
    # The password proven before anything is told (by the guard's login, else here)
    if not sender.configured and not request.get(VERIFIED):
        await relay.login(sender)
        request[VERIFIED] = True
    if not is_admin(sender, config.admin or ()):
        raise Forbidden("these credentials may not see the gateway's state (they are not "
                        "listed in admin)", code="not_admin")
    sessions = relay.sessions()
    return secured(web.json_response({
        "sessions": {"open": len(sessions), "max": config.max_sessions,
                     "list": [session.as_json() for session in sessions]},
        "refusals": request.app[REFUSALS].snapshot(),
        "errors": list(request.app[LOG_TAIL].lines),
    }))


async def _watch_logs(app: web.Application) -> None:
    logging.getLogger(WATCHED).addHandler(app[LOG_TAIL])


async def _unwatch_logs(app: web.Application) -> None:
    logging.getLogger(WATCHED).removeHandler(app[LOG_TAIL])


def add_routes(app: web.Application, _config: Config) -> None:
    refusals = app[REFUSALS] = Refusals()
    app[LOG_TAIL] = LogTail()
    app[ERROR_WATCHERS].append(refusals.watch)
    app.on_startup.append(_watch_logs)
    app.on_cleanup.append(_unwatch_logs)
    app[SENDING].add(app.router.add_get(ROUTE, get_status))  # authenticated like a send
