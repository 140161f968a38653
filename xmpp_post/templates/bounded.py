"""Jinja2's own filters with their work bounded, and the guard every filter runs in.

A filter's work is bounded before it starts: a value it turns into text may be no longer
than ``MAX_SIZE`` (a list that holds one large string many times counts each time), a
number that sets how much it makes is checked (``center``'s width, ``round``'s
precision, ``num``'s digits), it sorts at most ``MAX_SORTED`` items, ``sum`` adds only
numbers (adding lists copies them again and again), ``wordwrap`` refuses words it would
cut in quadratic time, and ``urlize`` and ``wordwrap`` (slow per character) take at most
``SLOW_TEXT`` characters. Every filter and test checks the render's deadline and counts
what it returns.

Every one is installed as asking for the context (``pass_context``): Jinja2 never calls
such a filter at compile time, so nothing a template holds as a constant is computed
while it loads.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from jinja2 import filters as jinja
from jinja2 import pass_context, pass_environment, pass_eval_context
from jinja2.environment import Environment
from jinja2.nodes import EvalContext
from jinja2.runtime import Context

from xmpp_post.templates import filters
from xmpp_post.templates.limits import (
    MAX_BUILT,
    MAX_DIGITS,
    MAX_SIZE,
    MAX_SORTED,
    BudgetExceeded,
    bounded_list,
    check,
    check_length,
    check_percent_format,
    check_size,
    count_built,
    joined_items,
    replaced_length,
    small_int,
    text_size,
)

SLOW_TEXT = 32 * 1024  # characters urlize and wordwrap take at most

# Filters that never turn their value into text as a whole, nor do work that grows
# faster than it: they take any value.
ANY_VALUE = frozenset({"default", "d", "length", "count", "first", "last", "random", "cap",
                       "more", "plural", "attr", "reverse", "abs"})
# ...that take any list or mapping (they go through its items) but not any text.
ANY_CONTAINER = frozenset({"list", "map", "select", "reject", "selectattr", "rejectattr",
                           "unique", "min", "max", "batch", "slice", "join", "tojson",
                           "sort", "dictsort", "groupby", "sum", "pairs", "values",
                           "items", "round", "int", "float", "filesizeformat"})
# ...that take any text (their work on it is a slice or a short parse) but not any list.
ANY_TEXT = frozenset({"shorten", "firstline", "sha", "refname", "when", "duration",
                      "string", "truncate", "num", "trim"})
# Tests that turn their value into text.
TEXT_TESTS = frozenset({"lower", "upper"})
_SMALLER_TEXT = {"urlize": SLOW_TEXT, "wordwrap": SLOW_TEXT}


def _width(value: Any, what: str) -> int:
    number = int(value)
    check_length(abs(number), what)
    return number


def center(value: Any, width: int = 80) -> str:
    return jinja.do_center(filters.text_of(value), _width(width, "center()"))


def indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    pad = width if isinstance(width, str) else " " * max(_width(width, "indent()"), 0)
    text = filters.text_of(value)
    check_length(len(text) + (text.count("\n") + 1) * len(pad), "indent()")
    return jinja.do_indent(text, width, first, blank)


@pass_environment
def wordwrap(environment: Environment, value: Any, width: int = 79,
             break_long_words: bool = True, wrapstring: str | None = None,
             break_on_hyphens: bool = True) -> str:
    text = filters.text_of(value)
    columns = max(_width(width, "wordwrap()"), 1)
    wrap = environment.newline_sequence if wrapstring is None else str(wrapstring)
    breaks = len(text) // columns + text.count("\n") + 1
    check_length(len(text) + breaks * len(wrap), "wordwrap()")
    if break_long_words:  # textwrap copies a long word's rest for each piece it cuts
        runs = re.compile(rf"(?<!\S)\S{{{columns + 1},}}|(?<!\s)\s{{{columns + 1},}}")
        copied = sum(len(run.group()) ** 2 // columns for run in runs.finditer(text))
        if copied > MAX_BUILT:
            raise BudgetExceeded(f"wordwrap({columns}) of words this long would take too "
                                 "long; wrap at a larger width")
    return jinja.do_wordwrap(environment, text, columns, break_long_words, wrapstring,
                             break_on_hyphens)


def batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
    count = _width(linecount, "batch()")
    check_length(count * text_size(fill_with), "batch()")
    return jinja.do_batch(value, count, fill_with)


def slice_(value: Any, slices: int, fill_with: Any = None) -> Any:
    count = _width(slices, "slice()")
    check_length(count * (1 + text_size(fill_with)), "slice()")
    return jinja.sync_do_slice(value, count, fill_with)


def format_(value: Any, *args: Any, **kwargs: Any) -> str:
    check_percent_format(filters.text_of(value), kwargs or args)
    return jinja.do_format(value, *args, **kwargs)


@pass_eval_context
def join(eval_ctx: EvalContext, value: Any, d: str = "", attribute: str | None = None) -> str:
    items: Iterable[Any] = filters.items_of(value)
    if attribute is not None:
        items = map(jinja.make_attrgetter(eval_ctx.environment, attribute), items)
    separator = filters.text_of(d)
    return jinja.sync_do_join(eval_ctx, joined_items(items, len(separator), "join()"),
                              separator)


@pass_eval_context
def replace(eval_ctx: EvalContext, value: Any, old: str, new: str,
            count: int | None = None) -> str:
    text = filters.text_of(value)
    check_length(replaced_length(text, filters.text_of(old), filters.text_of(new)),
                 "replace()")
    return jinja.do_replace(eval_ctx, text, old, new, count)


@pass_eval_context
def tojson(eval_ctx: EvalContext, value: Any, indent: int | None = None) -> str:
    if indent is not None and not (isinstance(indent, int) and 0 <= indent <= 16):
        raise BudgetExceeded("tojson(indent) must be a number from 0 to 16")
    check_length(text_size(value) * 2, "tojson()")
    return str(jinja.do_tojson(eval_ctx, value, indent))


def round_(value: Any, precision: int = 0, method: str = "common") -> float:
    digits = small_int(precision, "round(precision)", -MAX_DIGITS, MAX_DIGITS)
    return jinja.do_round(value, digits, method)  # type: ignore[arg-type]


@pass_environment
def sum_(environment: Environment, iterable: Any, attribute: str | None = None,
         start: Any = 0) -> Any:
    if not _is_number(start):
        raise BudgetExceeded("sum() adds numbers: its start must be a number")
    items: Iterable[Any] = iterable
    if attribute is not None:
        items = map(jinja.make_attrgetter(environment, attribute), items)
    total = start
    for item in items:
        if not _is_number(item):
            raise BudgetExceeded("sum() adds numbers only")
        total += item
    return total


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not (isinstance(value, float)
                                                   and math.isnan(value))


@pass_environment
def sort(environment: Environment, value: Any, *args: Any, **kwargs: Any) -> Any:
    return jinja.do_sort(environment, bounded_list(value, "sort()", MAX_SORTED), *args,
                         **kwargs)


def dictsort(value: Mapping[Any, Any], *args: Any, **kwargs: Any) -> Any:
    if isinstance(value, Mapping):
        check_length(len(value), "dictsort()", MAX_SORTED)
    return jinja.do_dictsort(value, *args, **kwargs)


@pass_environment
def groupby(environment: Environment, value: Any, *args: Any, **kwargs: Any) -> Any:
    return jinja.sync_do_groupby(environment, bounded_list(value, "groupby()", MAX_SORTED),
                                 *args, **kwargs)


BOUNDED: dict[str, Callable[..., Any]] = {
    "center": center, "indent": indent, "wordwrap": wordwrap, "batch": batch,
    "slice": slice_, "format": format_, "join": join, "replace": replace, "tojson": tojson,
    "round": round_, "sum": sum_, "sort": sort, "dictsort": dictsort, "groupby": groupby,
}


def check_input(name: str, value: Any) -> None:
    """Refuse a value filter ``name`` would take too long over (see the module doc)."""
    if name in ANY_VALUE:
        return
    if isinstance(value, str):
        if name not in ANY_TEXT:
            check_length(len(value), f"the text {name}() works on",
                         _SMALLER_TEXT.get(name, MAX_SIZE))
    elif name not in ANY_CONTAINER:
        check_size(value, f"the text of the value {name}() works on")


# Jinja2 (3.1) records what pass_context and its siblings ask for in this attribute of
# the function (an enum member named after it); read here only, checked at import.
_PASS_MARK = "jinja_pass_arg"


def _passes(function: Callable[..., Any]) -> str | None:
    mark = getattr(function, _PASS_MARK, None)
    return getattr(mark, "name", None)


def _probe() -> None: ...


for _decorator, _name in ((pass_context, "context"), (pass_eval_context, "eval_context"),
                          (pass_environment, "environment")):
    if _passes(_decorator(functools.partial(_probe))) != _name:  # pragma: no cover
        raise ImportError("xmpp_post.templates.bounded was written for Jinja2 3.1's "
                          f"{_PASS_MARK!r} marks, which this Jinja2 does not set")


def _guarded(name: str, function: Callable[..., Any],
             check_value: Callable[[str, Any], None]) -> Callable[..., Any]:
    """``function`` asking for the context (so never folded at compile time), checking
    the deadline and its value first and counting what it returns."""
    passes = _passes(function)

    @pass_context
    @functools.wraps(function)
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        check()
        check_value(name, value)
        if passes == "context":
            result = function(context, value, *args, **kwargs)
        elif passes == "eval_context":
            result = function(context.eval_ctx, value, *args, **kwargs)
        elif passes == "environment":
            result = function(context.environment, value, *args, **kwargs)
        else:
            result = function(value, *args, **kwargs)
        count_built(result)
        return result
    return guarded


def _check_test(name: str, value: Any) -> None:
    if name in TEXT_TESTS and not isinstance(value, str):
        check_size(value, f"the text of the value the test {name} looks at")


def install(environment: Environment) -> None:
    """Replace an environment's filters with the bounded set plus ours, and wrap them
    and its tests in the guard."""
    environment.filters.update(BOUNDED)
    environment.filters.update(filters.OURS)
    for name, function in list(environment.filters.items()):
        environment.filters[name] = _guarded(name, function, check_input)
    tests = cast(dict[str, Callable[..., Any]], environment.tests)
    for name, test in list(tests.items()):
        tests[name] = _guarded(name, test, _check_test)
