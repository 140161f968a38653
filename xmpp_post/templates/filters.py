"""The filters templates can use: ours, and Jinja2's own with their sizes bounded.

Ours (each takes anything: ``None`` and missing values count as empty text or lists)::

    items|cap(n=10)         the first n items, as a list
    items|more(n=10)        "… and 12 more" when there are more than n items, else ""
    text|shorten(width=300) at most width characters, ending in "…" when cut
    text|oneline            white space and line breaks collapsed into single spaces
    text|firstline          the first non-blank line (a commit's title)
    text|quote              every line as an XEP-0393 quote ("> line")
    text|code               `text` (backticks inside become '), "" when empty
    text|bold               *text* on one line, "" when empty
    text|slack_text         Slack/Mattermost markup as readable text: <url|label> is
                            "label (url)", <!channel> dropped, &amp; &lt; &gt; unescaped
    text|md_text            Markdown as XEP-0393: **b** and headings *b*, ~~s~~ ~s~,
                            [label](url) "label (url)", <!-- comments --> removed
    sha|sha(n=7)            a short commit id
    ref|refname             "refs/heads/main" -> "main", "refs/tags/v1" -> "v1"
    time|when               "2024-05-01 12:00 UTC" from ISO 8601 text or Unix seconds;
                            "" for Go's zero time (a firing alert's endsAt)
    seconds|duration        "1h 2m", "4m 12s", "12s"
    count|plural(word, plural=word+"s")
                            "1 commit", "3 commits" (count may be a number or a list)
    number|num(digits=4)    44.23943 -> "44.24", 1.0 -> "1" (digits: 0 to 32)
    mapping|pairs(exclude=None, sep=", ")
                            "job=api, severity=critical", sorted by key, without the
                            keys of exclude (a mapping or a list of names)
    mapping|values(first=None)
                            the values sorted by key, the value of key ``first`` first
                            (Alertmanager orders group labels so: alertname first)

Jinja2's own filters are there too, their work bounded (:mod:`xmpp_post.templates.bounded`,
which also installs every filter: each one checks the render's deadline, the size of
what it works on, and the size of what it returns).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sized
from itertools import islice
from typing import Any

from jinja2.runtime import Undefined

from xmpp_post.templates import text as t
from xmpp_post.templates.limits import (
    MAX_DIGITS,
    MAX_SORTED,
    bounded_list,
    check_size,
    joined_items,
    small_int,
)


def text_of(value: Any) -> str:
    """``value`` as text; a value whose text would pass MAX_SIZE is refused first (a list
    can hold one large string many times: its text is far larger than the list)."""
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, str):
        return value
    check_size(value, "the text of a value")
    return str(value)


def items_of(value: Any) -> list[Any]:
    if isinstance(value, str | bytes | Undefined) or value is None:
        return []
    if isinstance(value, Iterable):
        return list(value)
    return []


def cap(items: Any, n: int = 10) -> list[Any]:
    if isinstance(items, str | bytes | Undefined) or not isinstance(items, Iterable):
        return []
    return list(islice(items, max(int(n), 0)))


def more(items: Any, n: int = 10) -> str:
    if isinstance(items, str | bytes | Undefined) or not isinstance(items, Sized):
        return ""
    rest = len(items) - max(int(n), 0)
    return f"… and {rest} more" if rest > 0 else ""


def shorten(value: Any, width: int = 300) -> str:
    return t.shorten(text_of(value), int(width))


def oneline(value: Any) -> str:
    return t.oneline(text_of(value))


def firstline(value: Any) -> str:
    return t.firstline(text_of(value))


def quote(value: Any) -> str:
    return t.quote(text_of(value))


def code(value: Any) -> str:
    text = t.oneline(text_of(value)).replace("`", "'")
    return f"`{text}`" if text else ""


def bold(value: Any) -> str:
    text = t.oneline(text_of(value))
    return f"*{text}*" if text else ""


def slack_text(value: Any) -> str:
    return t.slack_text(text_of(value))


def md_text(value: Any) -> str:
    return t.md_text(text_of(value))


def sha(value: Any, n: int = 7) -> str:
    return text_of(value).strip()[:max(int(n), 0)]


def refname(value: Any) -> str:
    ref = text_of(value)
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref


def when(value: Any) -> str:
    return "" if isinstance(value, Undefined) else t.when(_scalar(value))


def duration(value: Any) -> str:
    return "" if isinstance(value, Undefined) else t.duration(_scalar(value))


def _scalar(value: Any) -> Any:
    """A number or text as it is; anything else as its text (its size checked first)."""
    return value if isinstance(value, int | float | str) else text_of(value)


def plural(count: Any, word: str, plural: str | None = None) -> str:
    if isinstance(count, Sized) and not isinstance(count, str):
        number = len(count)
    else:
        try:
            number = int(count)
        except (TypeError, ValueError, OverflowError):
            number = 0
    return f"{number} {word if number == 1 else (plural or word + 's')}"


def num(value: Any, digits: int = 4) -> str:
    shown = small_int(digits, "num(digits)", 0, MAX_DIGITS)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return text_of(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 10 ** shown:
        return f"{value:.0f}"
    return f"{value:.{shown}g}"


def pairs(mapping: Any, exclude: Any = None, sep: str = ", ") -> str:
    if not isinstance(mapping, Mapping):
        return ""
    names = exclude.keys() if isinstance(exclude, Mapping) else items_of(exclude)
    skipped = {str(name) for name in names}
    keys = sorted(bounded_list(mapping, "pairs()", MAX_SORTED), key=str)
    shown = joined_items((f"{key}={text_of(mapping[key])}" for key in keys
                          if str(key) not in skipped), len(text_of(sep)), "pairs()")
    return text_of(sep).join(shown)


def values(mapping: Any, first: str | None = None) -> list[Any]:
    if not isinstance(mapping, Mapping):
        return []
    keys = sorted(bounded_list(mapping, "values()", MAX_SORTED),
                  key=lambda key: (key != first, str(key)))
    return [mapping[key] for key in keys]


OURS: dict[str, Callable[..., Any]] = {
    "cap": cap, "more": more, "shorten": shorten, "oneline": oneline,
    "firstline": firstline, "quote": quote, "code": code, "bold": bold,
    "slack_text": slack_text, "md_text": md_text, "sha": sha, "refname": refname,
    "when": when, "duration": duration, "plural": plural, "num": num, "pairs": pairs,
    "values": values,
}
