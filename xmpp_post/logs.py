"""Structured logging: one event per line, with the request id of the HTTP request.

``event(logger, "name", key=value, ...)`` logs an event with fields; the text format
renders ``name key=value ...`` and the JSON format one object per line. The request id
travels in a context variable, so log lines from the XMPP side of a request carry it too.
Nothing here ever receives a password, an ``Authorization`` header or message text.

An event costs a few µs: when every handler it would reach at its level is one of ours
(``handler``, an ``EventHandler``) and no logger on its way filters, ``event`` writes
the line itself, without a ``LogRecord``; the line is the very one the formatter writes
for a record (both go through the formatter's ``line``), so nothing about the output
changes.
Otherwise the event goes through ``logging`` as usual.

One event is one line: in the text format a field value with white space, quotes, ``=``
or any character that is not printable is written as a JSON string, control characters
in a message are escaped (``escape``), and the lines of a traceback are indented, so no
value from a request can start a line of its own that looks like another event.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
FORMATS = ("text", "json")
PAIRS_KEPT = 1024


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    if not logger.isEnabledFor(level):
        return
    handlers = _direct_handlers(logger, level)
    if handlers is None:
        logger.log(level, name, extra={"fields": fields})
        return
    created = time.time()
    request_id = REQUEST_ID.get()
    for out in handlers:
        out.write_event(created, level, logger.name, request_id, name, fields)


def _direct_handlers(logger: logging.Logger, level: int) -> list[EventHandler] | None:
    """The handlers an event of ``level`` reaches, if it can skip ``logging``'s machinery:
    all of them ours, unfiltered, and no filter on the loggers on the way; else None."""
    found: list[EventHandler] = []
    reached = False
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for out in current.handlers:
            reached = True
            if level < out.level:  # below its level: any handler sees nothing of it
                continue
            if type(out) is not EventHandler or out.filters:
                return None
            found.append(out)
        if not current.propagate:
            break
        current = current.parent
    return found if reached else None  # no handler at all: logging's last resort decides


def _fields(record: logging.LogRecord) -> Mapping[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


def escape(text: str) -> str:
    """``text`` with every character that is not printable (line breaks, escapes,
    separators) written as a Python escape, so it cannot break a log line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _text_value(value: Any) -> str:
    """A field value as it is written in the text format: as is, or as a JSON string if it
    is empty, has white space, quotes or ``=``, or anything not printable."""
    text = str(value)
    if text and text.isprintable() and " " not in text and '"' not in text and "=" not in text:
        return text
    return json.dumps(text)


class _Clock:
    """``time.strftime`` of a time, redone only when the second changes."""

    def __init__(self, fmt: str) -> None:
        self._fmt = fmt
        self._second = -1
        self._text = ""

    def format(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._text = time.strftime(self._fmt, time.localtime(created))
            self._second = second
        return self._text


class EventFormatter(logging.Formatter):
    """A formatter whose line for an event is ``line(...)``, with or without a record."""

    def line(self, created: float, level: int, name: str, request_id: str, message: str,
             fields: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def format(self, record: logging.LogRecord) -> str:
        text = self.line(record.created, record.levelno, record.name,
                         getattr(record, "request_id", "-"), record.getMessage(),
                         _fields(record))
        return self.with_exception(text, record)

    def with_exception(self, text: str, record: logging.LogRecord) -> str:
        return text


class TextFormatter(EventFormatter):
    """``<date> <time>,<ms> LEVEL logger [request id] event key=value ...``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        self._clock = _Clock(self.default_time_format)
        # Rendered ``key=value`` pairs of recent events: routes, senders, peers repeat.
        self._pairs: dict[tuple[str, str], str] = {}

    def line(self, created: float, level: int, name: str, request_id: str, message: str,
             fields: Mapping[str, Any]) -> str:
        stamp = f"{self._clock.format(created)},{int((created - int(created)) * 1000):03d}"
        head = (f"{stamp} {logging.getLevelName(level)} {name} [{request_id}] "
                f"{escape(message)}")
        if not fields:
            return head
        pairs = [head]
        known = self._pairs
        for key, value in fields.items():
            if type(value) is not str:
                pairs.append(f"{key}={_text_value(value)}")
                continue
            pair = known.get((key, value))
            if pair is None:
                if len(known) >= PAIRS_KEPT:
                    known.clear()
                pair = known[(key, value)] = f"{key}={_text_value(value)}"
            pairs.append(pair)
        return " ".join(pairs)

    def with_exception(self, text: str, record: logging.LogRecord) -> str:
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        rest = []
        if record.exc_text:
            rest += record.exc_text.split("\n")
        if record.stack_info:
            rest += self.formatStack(record.stack_info).split("\n")
        # A traceback's lines, indented: only the first line of an event starts a line.
        return "\n".join([text, *("  " + escape(part) for part in rest)])


class JsonFormatter(EventFormatter):
    """One JSON object per event: ts, level, logger, event, request_id and the fields."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock("%Y-%m-%dT%H:%M:%S%z")

    def line(self, created: float, level: int, name: str, request_id: str, message: str,
             fields: Mapping[str, Any]) -> str:
        doc: dict[str, Any] = {
            "ts": self._clock.format(created), "level": logging.getLevelName(level).lower(),
            "logger": name, "event": message, "request_id": request_id, **fields,
        }
        return json.dumps(doc, default=str)

    def format(self, record: logging.LogRecord) -> str:
        if not record.exc_info:
            return super().format(record)
        doc = json.loads(super().format(record))
        doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class EventHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes one event per line, each with the current request id; ``event`` may hand
    it an event directly (``write_event``)."""

    formatter: EventFormatter

    def __init__(self, stream: Any, formatter: EventFormatter) -> None:
        super().__init__(stream)
        self.setFormatter(formatter)

    def handle(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return bool(super().handle(record))

    def write_event(self, created: float, level: int, name: str, request_id: str,
                    message: str, fields: Mapping[str, Any]) -> None:
        try:
            text = self.formatter.line(created, level, name, request_id, message, fields)
            self.acquire()
            try:
                self.stream.write(text + self.terminator)
                self.flush()
            finally:
                self.release()
        except Exception:
            self.handleError(logging.makeLogRecord(
                {"name": name, "levelno": level, "levelname": logging.getLevelName(level),
                 "msg": message, "created": created}))


def handler(stream: Any, fmt: str = "text") -> logging.Handler:
    """A handler writing one event per line, each with the current request id."""
    return EventHandler(stream, JsonFormatter() if fmt == "json" else TextFormatter())


def setup(level: str, fmt: str = "text") -> None:
    """Configure the root logger; slixmpp stays at warning (it logs raw traffic below)."""
    root = logging.getLogger()
    root.handlers[:] = [handler(sys.stderr, fmt)]
    root.setLevel(level.upper())
    quiet()


class _ClientProtocolErrors(logging.Filter):
    """aiohttp logs a malformed request (e.g. a request line over the size limit) as an
    error with a traceback that quotes the request; it is the client's fault, so it
    becomes one warning line that names the problem without repeating the request."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__module__ == "aiohttp.http_exceptions":
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "malformed HTTP request: %s", (type(exc).__name__,)
            record.exc_info = record.exc_text = None
        return True


_FILTER = _ClientProtocolErrors()


def quiet() -> None:
    """Keep libraries that log raw protocol traffic (credentials, bodies) quiet."""
    logging.getLogger("slixmpp").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server = logging.getLogger("aiohttp.server")
    if _FILTER not in server.filters:
        server.addFilter(_FILTER)
