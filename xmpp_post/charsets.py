"""The charsets a request's text may be decoded from.

Any text encoding Python knows, except those meant for domain names: ``punycode`` (and
``idna``, which runs it on each label) decode in pure Python, in time that grows with
the square of the text, so a 64 KiB body would hold the event loop for a third of a
second. A charset that names one of them is as unknown as a misspelt one.
"""

from __future__ import annotations

import codecs

SLOW_CODECS = frozenset({"punycode", "idna"})


def decode(data: bytes, charset: str) -> str:
    """``data.decode(charset)``; LookupError for an unknown charset or a slow codec."""
    if codecs.lookup(charset).name in SLOW_CODECS:
        raise LookupError(f"the codec {charset!r} is not accepted")
    return data.decode(charset)
