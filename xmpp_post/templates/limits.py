"""What one render may spend, and the checks that keep it within that.

A :class:`Budget` lives in a context variable that :func:`budgeted` sets for one render;
outside a render (compiling) nothing is counted, and nothing is folded at compile time
(every filter asks for the context, which makes Jinja2 leave it to the render). The
checks estimate a result's size *before* an operation that can blow a small value up
builds it, and bound every number that sets how much work a call does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.utils import Namespace

MAX_RANGE = 10_000          # items in one range()
MAX_ITERATIONS = 100_000    # loop iterations in one render
MAX_SIZE = 256 * 1024       # characters (or items) of one value a template builds
MAX_PRINTED = 1024 * 1024   # characters printed by {{ … }} in one render, buffers included
MAX_BUILT = 32 * 1024 * 1024  # characters (or items) filters and methods make in one render
MAX_INT_BITS = 64 * 1024    # bits of an integer a template computes
MAX_SORTED = 10_000         # items one filter sorts (a sort runs in C, holding the GIL)
MAX_DIGITS = 32             # digits num() and round() may be asked for


class BudgetExceeded(Exception):
    """A render went over one of its limits."""


@dataclass
class Budget:
    """What one render may still spend."""

    deadline: float
    seconds: float
    max_printed: int = MAX_PRINTED
    clock: Callable[[], float] = time.monotonic  # the deadline's clock
    iterations: int = 0
    printed: int = 0
    built: int = 0

    def check(self) -> None:
        if self.clock() > self.deadline:
            raise BudgetExceeded(f"rendering took longer than {self.seconds:g} s")


_budget: ContextVar[Budget | None] = ContextVar("xmpp_post_template_budget", default=None)


@contextmanager
def budgeted(budget: Budget) -> Iterator[Budget]:
    """Count everything the current thread renders against ``budget``."""
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def current_budget() -> Budget | None:
    """The budget of the render in progress in this thread, if any."""
    return _budget.get()


def check() -> None:
    """Raise :class:`BudgetExceeded` if the render in progress is out of time."""
    budget = _budget.get()
    if budget is not None:
        budget.check()


def text_size(value: Any, limit: int = MAX_SIZE) -> int:
    """About how many characters ``str(value)`` has, counting no further than ``limit``."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total <= limit:
                stack.extend(item)
        else:
            total += 8
    return total


def count_built(result: Any) -> None:
    """Count what a filter or method made against :data:`MAX_BUILT`, so a long stream of
    large values (``range(n)|map("replace", …)``) stops early, and check its size."""
    if isinstance(result, int) and result.bit_length() > MAX_INT_BITS:
        raise BudgetExceeded("a filter or method made too large a number")
    if not isinstance(result, str | bytes | list | tuple | dict):
        return
    check_length(len(result), "a filter's or method's result")
    budget = _budget.get()
    if budget is not None:
        budget.built += len(result)
        if budget.built > MAX_BUILT:
            raise BudgetExceeded(f"the template made more than {MAX_BUILT} characters")


def check_size(value: Any, what: str = "a value") -> None:
    """Refuse a value whose text would be longer than :data:`MAX_SIZE`."""
    check_length(text_size(value), what)


def check_length(length: int, what: str = "a value", limit: int = MAX_SIZE) -> None:
    if length > limit:
        raise BudgetExceeded(f"{what} would be longer than {limit} characters or items")


def small_int(value: Any, what: str, low: int, high: int) -> int:
    """``int(value)``, refused unless it is from ``low`` to ``high``."""
    number = int(value)
    if not low <= number <= high:
        raise BudgetExceeded(f"{what} must be a number from {low} to {high}")
    return number


def bounded_list(items: Iterable[Any], what: str, limit: int = MAX_SIZE) -> list[Any]:
    """``list(items)``, refused past ``limit`` items before it grows any further."""
    found: list[Any] = []
    for item in items:
        found.append(item)
        if len(found) > limit:
            raise BudgetExceeded(f"{what} takes at most {limit} items")
    return found


def bounded_range(*args: int) -> range:
    """``range()`` with at most :data:`MAX_RANGE` items."""
    check()
    numbers = range(*args)
    try:
        too_long = len(numbers) > MAX_RANGE
    except OverflowError:
        too_long = True
    if too_long:
        raise BudgetExceeded(f"range() is limited to {MAX_RANGE} items")
    return numbers


class BoundedNamespace(Namespace):
    """``namespace()`` whose members stay small, so a loop cannot double a value forever."""

    def __setitem__(self, name: str, value: Any) -> None:
        check()
        check_size(value, f"namespace member {name!r}")
        super().__setitem__(name, value)


# printf-style conversions: a width or precision given as '*' or a large number, or
# many conversions of one large value, can make a huge string from a small one. A
# conversion is read as Python reads it (a key in parentheses may nest them), in one
# pass: each part of the pattern is possessive and reads its characters once.
_PERCENT_SPEC = re.compile(r"[-+ #0]*+(\*|\d++)?+(?:\.(\*|\d*+))?+[hlL]?+(.?)", re.DOTALL)
_PARENTHESIS = re.compile(r"[()]")
_GROWTH = {"r": 6, "a": 10}  # repr() and ascii() escape a character in up to this many


def _percent_specs(template: str) -> Iterator[re.Match[str]]:
    """Each conversion of a %-format: width, precision and conversion character."""
    pos = template.find("%")
    while pos != -1:
        pos += 1
        if template.startswith("(", pos):
            depth, pos = 1, pos + 1
            while depth:
                found = _PARENTHESIS.search(template, pos)
                if found is None:
                    return  # an unclosed key: Python refuses the format
                depth += 1 if found.group() == "(" else -1
                pos = found.end()
        spec = _PERCENT_SPEC.match(template, pos)
        assert spec is not None  # every part is optional
        yield spec
        pos = template.find("%", spec.end())


def check_percent_format(template: str, values: Any = ()) -> None:
    """Refuse ``template % values`` when its result could pass :data:`MAX_SIZE`."""
    specs, growth = 0, 1
    for spec in _percent_specs(template):
        specs += 1
        growth = max(growth, _GROWTH.get(spec.group(3), 1))
        for part in spec.groups()[:2]:
            if part and (part == "*" or len(part) > 6 or int(part) > MAX_SIZE):
                raise BudgetExceeded(f"the width or precision {part!r} in a %-format "
                                     "is too large")
    if not specs:
        return
    if isinstance(values, dict):    # a key can be used by any number of conversions
        longest = max((text_size(value) for value in values.values()), default=0)
        check_length(len(template) + specs * longest * growth, "a %-format")
    else:                           # each value is used once
        check_length(len(template) + text_size(values) * growth, "a %-format")


_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def checked_call_args(method: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a call of a ``str``, ``bytes`` or ``int`` method whose result would be too
    long, before it is made; the arguments to call it with (``str.join`` gets a list)."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    values = (*args, *kwargs.values())
    if isinstance(owner, int) and name == "to_bytes":
        for arg in values:
            if isinstance(arg, int):
                check_length(arg, "int.to_bytes()")
    if not isinstance(owner, str | bytes):
        return args
    if name in _PADDING_METHODS:
        for arg in values:
            if isinstance(arg, int) and arg > MAX_SIZE:
                raise BudgetExceeded(f"str.{name}({arg}) would be too long")
    elif name == "expandtabs" and values and isinstance(values[0], int):
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        check_length(len(owner) + tabs * values[0], "str.expandtabs()")
    elif name == "translate" and values and isinstance(values[0], dict):
        longest = max((text_size(value) for value in values[0].values()), default=1)
        check_length(len(owner) * longest, "str.translate()")
    elif name == "replace" and len(args) >= 2 and isinstance(owner, str):
        check_length(replaced_length(owner, str(args[0]), str(args[1])), "str.replace()")
    elif name == "replace" and len(args) >= 2:
        check_length(len(owner) * (1 + text_size(args[1])), "bytes.replace()")
    elif name == "join" and args:
        args = (joined_items(args[0], len(owner), "str.join()"), *args[1:])
    return args


def joined_items(items: Iterable[Any], separator: int, what: str) -> list[Any]:
    """``items`` as a list, taken one at a time (a generator may make each one) and
    refused as soon as joining them with a ``separator`` long separator would make more
    than :data:`MAX_SIZE` characters."""
    kept: list[Any] = []
    length = 0
    for item in items:
        length += text_size(item) + (separator if kept else 0)
        if length > MAX_SIZE:
            raise BudgetExceeded(f"{what} would be longer than {MAX_SIZE} characters")
        kept.append(item)
    return kept


def replaced_length(text: str, old: str, new: str) -> int:
    """The length of ``text.replace(old, new)``, computed without building it."""
    return len(text) + text.count(old) * (len(new) - len(old))


def check_product(left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(count, int):
            check_length(text_size(seq) * max(count, 0), "a repeated value")
    if isinstance(left, int) and isinstance(right, int) \
            and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise BudgetExceeded("a product would be too large a number")


def check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 \
            and exponent > 0 and base.bit_length() * exponent > MAX_INT_BITS:
        raise BudgetExceeded("a power would be too large a number")
