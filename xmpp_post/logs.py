"""Structured logging: one event per line, with the request id of the HTTP request.

``event(logger, "name", key=value, ...)`` logs an event with fields; the text format
renders ``name key=value ...`` and the JSON format one object per line. The request id
travels in a context variable, so log lines from the XMPP side of a request carry it too.
Nothing here ever receives a password, an ``Authorization`` header or message text.

One event is one line: in the text format a field value with white space, quotes, ``=``
or any character that is not printable is written as a JSON string, control characters
in a message are escaped (``escape``), and the lines of a traceback are indented, so no
value from a request can start a line of its own that looks like another event.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from typing import Any

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
FORMATS = ("text", "json")


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": fields})


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


def escape(text: str) -> str:
    """``text`` with every character that is not printable (line breaks, escapes,
    separators) written as a Python escape, so it cannot break a log line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _text_value(value: Any) -> str:
    text = str(value)
    if text and text.isprintable() and not any(c in text for c in ' "='):
        return text
    return json.dumps(text)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        first, *rest = super().format(record).split("\n")
        extra = " ".join(f"{k}={_text_value(v)}" for k, v in _fields(record).items())
        line = f"{first} {extra}" if extra else first
        # A traceback's lines, indented: only the first line of an event starts a line.
        return "\n".join([line, *("  " + escape(part) for part in rest)])


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(), "logger": record.name,
            "event": record.getMessage(), "request_id": getattr(record, "request_id", "-"),
        }
        doc.update(_fields(record))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def handler(stream: Any, fmt: str = "text") -> logging.Handler:
    """A handler writing one event per line, each with the current request id."""
    out = logging.StreamHandler(stream)
    out.addFilter(_WithRequestId())
    out.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return out


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
