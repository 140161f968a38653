"""Regular expressions over untrusted text, in calls that each read a bounded stretch.

A call into ``re`` holds the GIL until it returns, so one ``sub`` over a megabyte stalls
the event loop for as long as it runs, even from another thread, even when its pattern
is linear. :func:`search` and :func:`sub` give the results of ``pattern.search`` and
``pattern.sub`` from calls that each read at most :data:`BLOCK` characters plus the
pattern's ``reach``: the most characters one attempt at a match may read from where it
starts. A pattern used here must have a bounded reach (every repetition bounded, or
possessive with a bounded count) and must never match the empty string; its lookbehinds
may look before the stretch, as they see the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

BLOCK = 4 * 1024  # characters a call reads besides a pattern's reach


def search(pattern: re.Pattern[str], text: str, pos: int = 0, *,
           reach: int) -> re.Match[str] | None:
    """``pattern.search(text, pos)``, one stretch of :data:`BLOCK` characters a call."""
    size = len(text)
    while pos < size:
        stop = min(pos + BLOCK, size)
        match = pattern.search(text, pos, min(stop + reach, size))
        if match is not None and match.start() < stop:
            return match
        pos = stop
    return None


def finditer(pattern: re.Pattern[str], text: str, *, reach: int) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)``, one stretch of :data:`BLOCK` characters a call."""
    pos = 0
    while (match := search(pattern, text, pos, reach=reach)) is not None:
        yield match
        pos = max(match.end(), match.start() + 1)


def sub(pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str], text: str, *,
        reach: int) -> str:
    """``pattern.sub(replace, text)``, one stretch of :data:`BLOCK` characters a call."""
    parts: list[str] = []
    last = 0
    for match in finditer(pattern, text, reach=reach):
        parts.append(text[last:match.start()])
        parts.append(replace(match))
        last = match.end()
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def blocks(text: str, size: int | None = None) -> Iterator[str]:
    """``text`` in pieces of about ``size`` (:data:`BLOCK`) characters, each cut just after
    a line break (a line longer than ``size`` stays whole), for work that never spans lines."""
    size = BLOCK if size is None else size
    start = 0
    while len(text) - start > size:
        cut = text.find("\n", start + size)
        if cut == -1:
            break
        yield text[start:cut + 1]
        start = cut + 1
    yield text[start:]
