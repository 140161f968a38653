"""ntfy's ``?auth=`` query parameter: an ``Authorization`` header value in base64.

ntfy clients that cannot set headers (webhooks, browsers' EventSource) put the whole
header value, ``Basic dXNlcjpwdw==`` or ``Bearer tk_…``, base64-encoded into ``auth``
(or ``authorization``). ntfy writes it in the URL-safe alphabet without padding; the
standard alphabet and padding are accepted too. Checking the credentials themselves is
the authentication chain's work; this only recovers the header value.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from xmpp_post.errors import Unauthorized

QUERY_NAMES = ("auth", "authorization")
SCHEMES = ("basic", "bearer")

_BASE64 = re.compile(r"[A-Za-z0-9+/\-_]*")
_HEADER_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")  # printable ASCII words


def _invalid() -> Unauthorized:
    # The value is a secret: it is never part of the message.
    return Unauthorized("the auth query parameter must be the base64 of an Authorization "
                        "header value (Basic or Bearer)", code="invalid_auth_param")


def decode_auth_param(value: str) -> str:
    """The ``Authorization`` header value that ``value`` (an ``auth`` parameter) carries."""
    text = value.strip().rstrip("=")
    if not text or not _BASE64.fullmatch(text) or len(text) % 4 == 1:
        raise _invalid()
    text = text.translate(str.maketrans("-_", "+/"))
    try:
        header = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        decoded = header.decode("ascii").strip()
    except (binascii.Error, ValueError):
        raise _invalid() from None
    scheme, _, credentials = decoded.partition(" ")
    if (scheme.lower() not in SCHEMES or not credentials.strip()
            or not _HEADER_VALUE.fullmatch(decoded)):
        raise _invalid()
    return decoded


def auth_from_query(query: Sequence[tuple[str, str]]) -> str | None:
    """The header value of the first non-empty ``auth``/``authorization`` parameter."""
    for name, value in query:
        if name.lower() in QUERY_NAMES and value.strip():
            return decode_auth_param(value)
    return None
