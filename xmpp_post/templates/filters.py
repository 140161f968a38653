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
    number|num(digits=4)    44.23943 -> "44.24", 1.0 -> "1"
    mapping|pairs(exclude=None, sep=", ")
                            "job=api, severity=critical", sorted by key, without the
                            keys of exclude (a mapping or a list of names)
    mapping|values(first=None)
                            the values sorted by key, the value of key ``first`` first
                            (Alertmanager orders group labels so: alertname first)

Jinja2's ``center``, ``indent``, ``wordwrap``, ``batch``, ``slice``, ``format``,
``join``, ``replace`` and ``tojson`` refuse arguments that would build a value larger
than the sandbox allows; every filter checks the render's deadline and the size of the
text it returns.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sized
from itertools import islice
from typing import Any

from jinja2 import filters as jinja
from jinja2 import pass_environment, pass_eval_context
from jinja2.environment import Environment
from jinja2.nodes import EvalContext
from jinja2.runtime import Undefined

from xmpp_post.templates import text as t
from xmpp_post.templates.limits import (
    BudgetExceeded,
    check,
    check_length,
    check_percent_format,
    count_built,
    replaced_length,
    text_size,
)


def _text(value: Any) -> str:
    if value is None or isinstance(value, Undefined):
        return ""
    return value if isinstance(value, str) else str(value)


def _items(value: Any) -> list[Any]:
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
    return t.shorten(_text(value), int(width))


def oneline(value: Any) -> str:
    return t.oneline(_text(value))


def firstline(value: Any) -> str:
    return t.firstline(_text(value))


def quote(value: Any) -> str:
    return t.quote(_text(value))


def code(value: Any) -> str:
    text = t.oneline(_text(value)).replace("`", "'")
    return f"`{text}`" if text else ""


def bold(value: Any) -> str:
    text = t.oneline(_text(value))
    return f"*{text}*" if text else ""


def slack_text(value: Any) -> str:
    return t.slack_text(_text(value))


def md_text(value: Any) -> str:
    return t.md_text(_text(value))


def sha(value: Any, n: int = 7) -> str:
    return _text(value).strip()[:max(int(n), 0)]


def refname(value: Any) -> str:
    ref = _text(value)
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref


def when(value: Any) -> str:
    return "" if isinstance(value, Undefined) else t.when(value)


def duration(value: Any) -> str:
    return "" if isinstance(value, Undefined) else t.duration(value)


def plural(count: Any, word: str, plural: str | None = None) -> str:
    if isinstance(count, Sized) and not isinstance(count, str):
        number = len(count)
    else:
        try:
            number = int(count)
        except (TypeError, ValueError):
            number = 0
    return f"{number} {word if number == 1 else (plural or word + 's')}"


def num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if abs(value) >= 10 ** int(digits):
        return f"{value:.0f}"
    return f"{value:.{int(digits)}g}"


def pairs(mapping: Any, exclude: Any = None, sep: str = ", ") -> str:
    if not isinstance(mapping, Mapping):
        return ""
    names = exclude.keys() if isinstance(exclude, Mapping) else _items(exclude)
    skipped = {str(name) for name in names}
    return sep.join(f"{key}={_text(mapping[key])}" for key in sorted(mapping, key=str)
                    if str(key) not in skipped)


def values(mapping: Any, first: str | None = None) -> list[Any]:
    if not isinstance(mapping, Mapping):
        return []
    keys = sorted(mapping, key=lambda key: (key != first, str(key)))
    return [mapping[key] for key in keys]


# Jinja2's filters that can build a large value from small arguments, bounded.

def _small_int(value: Any, what: str) -> int:
    number = int(value)
    check_length(number, what)
    return number


def center(value: Any, width: int = 80) -> str:
    return jinja.do_center(value, _small_int(width, "center()"))


def indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    pad = width if isinstance(width, str) else " " * _small_int(width, "indent()")
    text = _text(value)
    check_length(len(text) + (text.count("\n") + 1) * len(pad), "indent()")
    return jinja.do_indent(text, width, first, blank)


@pass_environment
def wordwrap(environment: Environment, value: Any, width: int = 79,
             break_long_words: bool = True, wrapstring: str | None = None,
             break_on_hyphens: bool = True) -> str:
    text = _text(value)
    wrap = environment.newline_sequence if wrapstring is None else str(wrapstring)
    breaks = len(text) // max(int(width), 1) + text.count("\n") + 1
    check_length(len(text) + breaks * len(wrap), "wordwrap()")
    return jinja.do_wordwrap(environment, text, width, break_long_words, wrapstring,
                             break_on_hyphens)


def batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
    check_length(_small_int(linecount, "batch()") * text_size(fill_with), "batch()")
    return jinja.do_batch(value, linecount, fill_with)


def slice_(value: Any, slices: int, fill_with: Any = None) -> Any:
    check_length(_small_int(slices, "slice()") * (1 + text_size(fill_with)), "slice()")
    return jinja.sync_do_slice(value, slices, fill_with)


def format_(value: Any, *args: Any, **kwargs: Any) -> str:
    check_percent_format(_text(value), kwargs or args)
    return jinja.do_format(value, *args, **kwargs)


@pass_eval_context
def join(eval_ctx: EvalContext, value: Any, d: str = "", attribute: str | None = None) -> str:
    items = _items(value)
    if attribute is None:
        check_length(len(d) * len(items) + sum(text_size(item) for item in items), "join()")
    return jinja.sync_do_join(eval_ctx, items, d, attribute)


@pass_eval_context
def replace(eval_ctx: EvalContext, value: Any, old: str, new: str,
            count: int | None = None) -> str:
    check_length(replaced_length(_text(value), _text(old), _text(new)), "replace()")
    return jinja.do_replace(eval_ctx, value, old, new, count)


@pass_eval_context
def tojson(eval_ctx: EvalContext, value: Any, indent: int | None = None) -> str:
    if indent is not None and not (isinstance(indent, int) and 0 <= indent <= 16):
        raise BudgetExceeded("tojson(indent) must be a number from 0 to 16")
    check_length(text_size(value) * 2, "tojson()")
    return str(jinja.do_tojson(eval_ctx, value, indent))


OURS: dict[str, Callable[..., Any]] = {
    "cap": cap, "more": more, "shorten": shorten, "oneline": oneline,
    "firstline": firstline, "quote": quote, "code": code, "bold": bold,
    "slack_text": slack_text, "md_text": md_text, "sha": sha, "refname": refname,
    "when": when, "duration": duration, "plural": plural, "num": num, "pairs": pairs,
    "values": values,
}
BOUNDED: dict[str, Callable[..., Any]] = {
    "center": center, "indent": indent, "wordwrap": wordwrap, "batch": batch,
    "slice": slice_, "format": format_, "join": join, "replace": replace, "tojson": tojson,
}


def _guarded(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` checking the deadline first, and counting what it returns.

    ``functools.wraps`` copies Jinja2's pass_context/pass_environment marks too.
    """
    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check()
        result = function(*args, **kwargs)
        count_built(result)
        return result
    return guarded


def install(filters: dict[str, Callable[..., Any]]) -> None:
    """Replace an environment's filters with the bounded set plus ours, all guarded."""
    filters.update(BOUNDED)
    filters.update(OURS)
    for name, function in list(filters.items()):
        filters[name] = _guarded(function)
