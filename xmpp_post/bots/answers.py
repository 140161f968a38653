"""What a webhook's answer means, and how long to wait before trying again.

* ``verdict(status)``: ``delivered`` (2xx), ``retry`` (5xx, 408, 429; network errors are
  retried too) or ``rejected`` (any other status: dropped at once and counted).
* ``parse_reply(status, content_type, body)``: the reply a 2xx answer asks for:
  ``text/plain`` -> its text; ``application/json`` ``{"body", "subject"?, "thread"?}``
  -> that; 204, an empty body or anything else -> no reply.
* ``RetryPolicy``: exponential backoff from ``first`` doubling up to ``cap`` seconds,
  never shorter than the endpoint's ``Retry-After``, until ``retry_for`` seconds after
  the message arrived; then the delivery is dropped (``expired``).
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from xmpp_post import charsets
from xmpp_post.model import xml_text

MAX_REPLY = 64 * 1024  # bytes of an answer's body read; a longer one sends no reply
MAX_RETRY_AFTER = 24 * 3600.0  # a Retry-After further away is read as this
RETRIED = frozenset({408, 429})


@dataclass(frozen=True)
class Reply:
    """The message to send back."""

    body: str
    subject: str | None = None
    thread: str | None = None


def verdict(status: int) -> str:
    if 200 <= status < 300:
        return "delivered"
    if status >= 500 or status in RETRIED:
        return "retry"
    return "rejected"


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = xml_text(value)
    return cleaned if cleaned.strip() else None


def parse_reply(status: int, content_type: str, body: bytes) -> Reply | None:
    """The reply a 2xx answer asks for, or None (see the module docstring)."""
    if not 200 <= status < 300 or status == 204 or not body or len(body) > MAX_REPLY:
        return None
    media = content_type.split(";")[0].strip().lower()
    try:
        text = charsets.decode(body, _charset(content_type))  # not punycode: slow
    except (LookupError, UnicodeDecodeError):
        return None
    if media == "text/plain":
        reply = _text(text)
        return Reply(reply) if reply is not None else None
    if media == "application/json" or media.endswith("+json"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            return None
        if not isinstance(data, dict):
            return None
        reply = _text(data.get("body"))
        if reply is None:
            return None
        return Reply(reply, _text(data.get("subject")), _text(data.get("thread")))
    return None


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (a number or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(int(text[:9])), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    wait = when.timestamp() - now
    return min(max(0.0, wait), MAX_RETRY_AFTER)


def http_date(when: float) -> str:
    """``when`` (Unix seconds) as an HTTP date, as a server writes ``Retry-After``."""
    return email.utils.format_datetime(datetime.fromtimestamp(when, UTC), usegmt=True)


@dataclass(frozen=True)
class RetryPolicy:
    retry_for: float
    first: float = 1.0
    cap: float = 60.0

    def backoff(self, attempt: int) -> float:
        """The wait after failed try number ``attempt`` (1, 2, ...)."""
        return min(self.cap, self.first * 2.0 ** min(max(0, attempt - 1), 30))

    def next_wait(self, attempt: int, arrived: float, now: float,
                  asked: float | None = None) -> float | None:
        """Seconds to wait before the next try, or None: give up (``retry_for`` after
        ``arrived`` has passed, or the endpoint asked to wait beyond it)."""
        remaining = arrived + self.retry_for - now
        if remaining <= 0:
            return None
        wait = max(self.backoff(attempt), asked or 0.0)
        if wait <= remaining:
            return wait
        if asked is not None and asked > remaining:
            return None
        return remaining  # one last try as the time runs out
