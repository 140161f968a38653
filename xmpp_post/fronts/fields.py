"""Validation of the optional message fields: pure functions, no I/O.

Each checker takes the field's text and returns the value to send, or raises
``BadRequest`` with the code ``invalid_<field>``. The message parser
(``message_request.py``) calls them; the rules are documented for clients in
``docs/api.md`` (Message fields).

=============  ===============================================================
``id``         1-64 characters of ``A-Z a-z 0-9 . _ : -``
``thread``     1-128 characters of the same set
``lang``       a BCP 47-like tag: ``en``, ``de-CH``, ``zh-Hant-TW`` (max 35)
``oob_url``    an absolute ``http`` or ``https`` URL with a host (max 2048)
``subject``    any text XML can carry (checked like the body)
``receipt``    ``true``/``false``/``1``/``0`` (JSON: also a boolean)
``nick``       a valid MUC nickname (a JID resourcepart after RFC 7622 rules)
``encrypt``    ``none`` or ``omemo`` (docs/omemo.md)
=============  ===============================================================
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from xmpp_post import jids
from xmpp_post.errors import BadRequest
from xmpp_post.model import ENCRYPTIONS

MAX_ID = 64
MAX_THREAD = 128
MAX_LANG = 35
MAX_URL = 2048
MAX_NICK = 64

_TOKEN = re.compile(r"[A-Za-z0-9._:-]+")
_LANG = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f\"<>\\^`{|}]")
_TRUE = ("true", "1")
_FALSE = ("false", "0")


def _invalid(name: str, why: str) -> BadRequest:
    return BadRequest(f"the field {name!r} {why}", code=f"invalid_{name}")


def _token(name: str, text: str, limit: int) -> str:
    if not _TOKEN.fullmatch(text) or len(text) > limit:
        raise _invalid(name, f"must be 1 to {limit} characters of letters, digits and . _ : -")
    return text


def stanza_id(text: str) -> str:
    return _token("id", text, MAX_ID)


def thread(text: str) -> str:
    return _token("thread", text, MAX_THREAD)


def lang(text: str) -> str:
    if not _LANG.fullmatch(text) or len(text) > MAX_LANG:
        raise _invalid("lang", "must be a language tag such as en, de-CH or zh-Hant-TW")
    return text


def oob_url(text: str) -> str:
    if len(text) > MAX_URL:
        raise _invalid("oob_url", f"must be at most {MAX_URL} characters")
    if _URL_FORBIDDEN.search(text):
        raise _invalid("oob_url", "contains a space, control character or character that "
                                  "must be percent-encoded")
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise _invalid("oob_url", "is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise _invalid("oob_url", "must be an absolute http:// or https:// URL with a host")
    return text


def encrypt(value: str) -> str:
    """``none`` or ``omemo`` (any case)."""
    mode = value.strip().lower() if isinstance(value, str) else ""
    if mode not in ENCRYPTIONS:
        raise _invalid("encrypt", f"must be {' or '.join(ENCRYPTIONS)}")
    return mode


def receipt(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _invalid("receipt", "must be true, false, 1 or 0")


def nick(text: str) -> str:
    """A room nickname, normalized like the server will (resourceprep)."""
    if len(text) > MAX_NICK:
        raise _invalid("nick", f"must be at most {MAX_NICK} characters")
    try:
        return jids.resourcepart(text)
    except jids.JidError as exc:
        raise _invalid("nick", f"is not a valid room nickname ({exc})") from None


def with_url(body: str | None, url: str) -> str:
    """The body to send with an out-of-band link: the URL is always part of the text."""
    if body is None or not body.strip():
        return url
    if url in body:
        return body
    return f"{body}\n{url}"
