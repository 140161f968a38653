"""The three calls the alert actions make to Alertmanager's API v2, and their failures.

``alertmanager_url`` is the base the API's paths go under (``http://alertmanager:9093``,
or Grafana's ``…/api/alertmanager/grafana``); credentials in it (``https://user:pass@…``)
are sent as HTTP Basic and shown nowhere: ``redacted`` is the form logs and answers may
use. Every failure, whether Alertmanager is unreachable, slow, or answers an error or
something that is not its API, is one ``AlertmanagerError`` whose text can be shown to
the person who asked (the URL's credentials are never in it). Answers are read up to a
bound (``MAX_ANSWER``) before they are parsed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from xmpp_post import cpu

MAX_ANSWER = 1024 * 1024  # bytes of an answer read (the alerts list is the long one)
PARSED_ON_LOOP = 16 * 1024  # bytes of JSON parsed on the event loop; more in a thread
MAX_ERROR_TEXT = 200
TIMEOUT = 10.0
MAX_SILENCE_ID = 64


class AlertmanagerError(Exception):
    """Alertmanager did not do what was asked; ``str()`` says why, fit to answer."""


def redacted(url: str) -> str:
    """``url`` without credentials, query or fragment: what a log may show."""
    try:
        parsed = URL(url)
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "(an invalid URL)"


def stamp(when: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as Alertmanager writes its own times."""
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Alertmanager:
    def __init__(self, url: str, http: aiohttp.ClientSession, *,
                 timeout: float = TIMEOUT) -> None:
        self._base = url.rstrip("/")
        self._secret = URL(url).password or ""
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.redacted = redacted(url)

    async def create_silence(self, labels: tuple[tuple[str, str], ...], starts: datetime,
                             ends: datetime, created_by: str, comment: str) -> str:
        """The id of a new silence matching exactly ``labels`` from ``starts`` to ``ends``."""
        answer = await self._call("POST", "/api/v2/silences", {
            "matchers": [{"name": name, "value": value, "isRegex": False, "isEqual": True}
                         for name, value in labels],
            "startsAt": stamp(starts), "endsAt": stamp(ends),
            "createdBy": created_by, "comment": comment})
        silence_id = answer.get("silenceID") if isinstance(answer, dict) else None
        if not isinstance(silence_id, str) or not valid_silence_id(silence_id):
            raise AlertmanagerError("Alertmanager's answer named no silence")
        return silence_id

    async def expire_silence(self, silence_id: str) -> None:
        if not valid_silence_id(silence_id):
            raise AlertmanagerError("that is no silence id")
        await self._call("DELETE", f"/api/v2/silence/{quote(silence_id, safe='')}")

    async def firing(self) -> list[dict[str, Any]]:
        """The alerts active now, neither silenced nor inhibited."""
        answer = await self._call(
            "GET", "/api/v2/alerts?active=true&silenced=false&inhibited=false")
        if not isinstance(answer, list):
            raise AlertmanagerError("Alertmanager's answer is not a list of alerts")
        return [alert for alert in answer if isinstance(alert, dict)]

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        url = URL(self._base + path, encoded=True)
        try:
            async with self._http.request(method, url, json=body, timeout=self._timeout,
                                          allow_redirects=False) as resp:
                data = await resp.content.read(MAX_ANSWER + 1)
                status = resp.status
        except TimeoutError:
            raise AlertmanagerError(f"Alertmanager ({self.redacted}) did not answer within "
                                    f"{self._timeout.total:g}s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise AlertmanagerError(f"Alertmanager ({self.redacted}) is unreachable "
                                    f"({type(exc).__name__})") from None
        if len(data) > MAX_ANSWER:
            raise AlertmanagerError("Alertmanager's answer is too long")
        if not 200 <= status < 300:
            raise AlertmanagerError(f"Alertmanager answered {status}: {self._said(data)}")
        if not data.strip():
            return None
        try:
            if len(data) > PARSED_ON_LOOP:
                return await cpu.run(json.loads, data)
            return json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            raise AlertmanagerError("Alertmanager's answer is not JSON") from None

    def _said(self, data: bytes) -> str:
        """Alertmanager's error text, on one bounded line, never holding the secret."""
        text = data[:MAX_ERROR_TEXT * 4].decode(errors="replace")
        try:
            parsed = json.loads(text)
            if isinstance(parsed, str):
                text = parsed
            elif isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
                text = parsed["message"]
        except (ValueError, RecursionError):
            pass
        line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
        if self._secret and self._secret in line:
            return "(its text is not shown)"
        return line[:MAX_ERROR_TEXT] or "(no text)"


def valid_silence_id(text: str) -> bool:
    """Alertmanager's silence ids are UUIDs: hex digits and dashes."""
    return 0 < len(text) <= MAX_SILENCE_ID and all(
        c in "0123456789abcdefABCDEF-" for c in text)
