"""ntfy's publish parameters: their names, and reading them from headers and the query.

Each parameter has a canonical name (its JSON member) and the names ntfy accepts for it,
in ntfy's order of precedence. A parameter is read from the first header that has a
non-empty value, else from the first query parameter that has one; names are
case-insensitive in both. Values are trimmed.

Header values arrive as ``str`` the way aiohttp decodes them (UTF-8, undecodable bytes as
lone surrogates). They are repaired before use: undecodable bytes are read as ISO-8859-1
(HTTP's historical header charset); text that is UTF-8 read as ISO-8859-1 is re-read as
UTF-8; RFC 2047 encoded words (``=?UTF-8?B?...?=``, ``=?UTF-8?Q?...?=``) are decoded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from email.errors import HeaderParseError
from email.header import decode_header

from xmpp_post import charsets
from xmpp_post.errors import BadRequest

# canonical name -> the header and query names ntfy reads it from, first wins
PARAMS: dict[str, tuple[str, ...]] = {
    "message": ("x-message", "message", "m"),
    "title": ("x-title", "title", "ti", "t"),
    "priority": ("x-priority", "priority", "prio", "p"),
    "tags": ("x-tags", "tags", "tag", "ta"),
    "delay": ("x-delay", "delay", "x-at", "at", "x-in", "in"),
    "actions": ("x-actions", "actions", "action"),
    "click": ("x-click", "click"),
    "attach": ("x-attach", "attach", "a"),
    "markdown": ("x-markdown", "markdown", "md"),
    "icon": ("x-icon", "icon"),
    "filename": ("x-filename", "filename", "file", "f"),
    "email": ("x-email", "x-e-mail", "email", "e-mail", "mail", "e"),
    "call": ("x-call", "call"),
    "template": ("x-template", "template", "tpl"),
    "encrypt": ("x-encrypt", "encrypt"),  # the gateway's own: none or omemo
    "cache": ("x-cache", "cache"),
    "firebase": ("x-firebase", "firebase"),
    "unifiedpush": ("x-unifiedpush", "unifiedpush", "up"),
    "poll_id": ("x-poll-id", "poll-id"),
    "content_type": ("content_type", "content-type"),  # query only: the header is separate
}

TRUE_WORDS = ("1", "yes", "true")

# RFC 9218's Priority header ("u=3, i"), which some proxies add; ntfy ignores it.
_HTTP_PRIORITY = re.compile(r"u=\d(?:,\s*(?:i|\d))?")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)[ \t\r\n]+(?==\?)")
_SURROGATE = re.compile("[\ud800-\udfff]")


class Params:
    """The publish parameters one request gives in its headers and query string."""

    def __init__(self, headers: Mapping[str, str], query: Sequence[tuple[str, str]]) -> None:
        self._headers: dict[str, str] = {}
        for name, value in headers.items():
            self._headers.setdefault(name.lower(), value)
        self._query: dict[str, str] = {}
        for name, value in query:
            key = name.lower()
            if key not in self._query or not self._query[key].strip():
                self._query[key] = value

    def get(self, param: str) -> str:
        """The parameter's value, or "" when no header or query parameter gives it."""
        names = PARAMS[param]
        for name in names:
            raw = self._headers.get(name)
            if raw is None or param == "content_type":
                continue
            value = header_text(raw).strip()
            if name == "priority" and _HTTP_PRIORITY.fullmatch(value):
                continue
            if value:
                return value
        for name in names:
            value = query_text(self._query.get(name, "")).strip()
            if value:
                return value
        return ""

    def flag(self, param: str) -> bool:
        """A boolean parameter, as ntfy reads it: 1, yes or true (any case) mean true."""
        return self.get(param).lower() in TRUE_WORDS


def header_text(value: str) -> str:
    """A header value as the text its sender meant (see the module docstring)."""
    if _SURROGATE.search(value):
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise BadRequest("a header value is not valid text",
                             code="invalid_encoding") from None
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            value = raw.decode("latin-1")
    elif any("\x80" <= char <= "\xff" for char in value) and max(value) <= "\xff":
        with suppress(UnicodeDecodeError):  # else it really is ISO-8859-1 text
            value = value.encode("latin-1").decode("utf-8")
    if "=?" in value:
        value = _decode_words(value)
    return value


def query_text(value: str) -> str:
    """A query parameter's value; undecodable bytes in it are refused."""
    if _SURROGATE.search(value):
        raise BadRequest("a query parameter is not valid UTF-8 after percent-decoding",
                         code="invalid_encoding")
    return value


def _decode_words(value: str) -> str:
    value = _BETWEEN_WORDS.sub("", value)  # white space between encoded words goes
    return _ENCODED_WORD.sub(_decode_word, value)


def _decode_word(match: re.Match[str]) -> str:
    word = match.group()
    try:
        parts = decode_header(word)
        return "".join(_part_text(part, charset) for part, charset in parts)
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return word  # as ntfy does, a word that does not decode stays as it is


def _part_text(part: bytes | str, charset: str | None) -> str:
    if isinstance(part, str):
        return part
    return charsets.decode(part, charset.partition("*")[0] if charset else "ascii")
