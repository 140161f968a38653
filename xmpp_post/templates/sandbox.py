"""The sandbox every template runs in, and the budget that bounds one render.

Jinja2's ``ImmutableSandboxedEnvironment`` already keeps templates away from Python's
internals and from mutating lists and dicts. This subclass adds what a gateway needs:

- a **deadline**, checked at every attribute and item lookup, every call, every operator
  it intercepts, every filter and every loop iteration (each ``{% for %}`` is compiled
  with its iterable wrapped in :meth:`Sandbox.guard_iter`), so a slow template stops
  soon after its time is up even though a thread cannot be killed;
- a cap on the loop iterations of one render and on ``range()``;
- size checks *before* the operations that can blow a small value up (``'x' * n``,
  ``'%999999999s' % x``, ``2 ** n``, ``str.center`` and friends, ``~``, ``namespace``
  assignments, macro arguments), and a cap on everything printed;
- a hard error, not a silent empty value, for unsafe attribute access
  (``''.__class__``, ``x|attr('__class__')``) and for ``str.format`` / ``format_map``;
- ``x.name`` on an object means its member ``name`` when there is one, so
  ``alert.values`` is Grafana's values and not the ``dict.values`` method.

The budget lives in a context variable that :func:`budgeted` sets for one render; outside
a render (compiling, constant folding) nothing is counted.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import BaseLoader, BytecodeCache, ChainableUndefined, nodes
from jinja2.bccache import Bucket
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Macro, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

MAX_RANGE = 10_000          # items in one range()
MAX_ITERATIONS = 100_000    # loop iterations in one render
MAX_SIZE = 256 * 1024       # characters (or items) of one value a template builds
MAX_PRINTED = 1024 * 1024   # characters printed by {{ … }} in one render, buffers included
MAX_BUILT = 32 * 1024 * 1024  # characters (or items) filters and methods make in one render
MAX_INT_BITS = 64 * 1024    # bits of an integer a template computes


class BudgetExceeded(Exception):
    """A render went over one of its limits."""


@dataclass
class Budget:
    """What one render may still spend."""

    deadline: float
    seconds: float
    max_printed: int = MAX_PRINTED
    iterations: int = 0
    printed: int = 0
    built: int = 0

    def check(self) -> None:
        if time.monotonic() > self.deadline:
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


def check_length(length: int, what: str = "a value") -> None:
    if length > MAX_SIZE:
        raise BudgetExceeded(f"{what} would be longer than {MAX_SIZE} characters or items")


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
# many conversions of one large value, can make a huge string from a small one.
_PERCENT_SPEC = re.compile(r"%(?:\([^)\n]{0,100}\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_percent_format(template: str, values: Any = ()) -> None:
    """Refuse ``template % values`` when its result could pass :data:`MAX_SIZE`."""
    specs = 0
    for match in _PERCENT_SPEC.finditer(template):
        specs += 1
        for part in match.groups():
            if part is not None and (part == "*" or len(part) > 6 or int(part) > MAX_SIZE):
                raise BudgetExceeded(f"the width or precision {part!r} in a %-format "
                                     "is too large")
    if not specs:
        return
    if isinstance(values, dict):    # a key can be used by any number of conversions
        longest = max((text_size(value) for value in values.values()), default=0)
        check_length(len(template) + specs * longest, "a %-format")
    else:                           # each value is used once
        check_length(len(template) + text_size(values), "a %-format")


_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def check_str_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a call of a ``str`` (or ``bytes``) method whose result would be too long."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes):
        return
    name = getattr(method, "__name__", "")
    values = (*args, *kwargs.values())
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
        items = args[0]
        if isinstance(items, list | tuple):
            length = len(owner) * len(items) + sum(text_size(item) for item in items)
            check_length(length, "str.join()")


def replaced_length(text: str, old: str, new: str) -> int:
    """The length of ``text.replace(old, new)``, computed without building it."""
    return len(text) + text.count(old) * (len(new) - len(old))


class _Guarded(CodeGenerator):
    """Compiles every ``{% for %}`` with its iterable wrapped in ``guard_iter`` and every
    operand of ``~`` in ``guard_text``."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):
            loop.iter = self._guarded("guard_iter", loop.iter)
        for concat in node.find_all(nodes.Concat):
            concat.nodes = [self._guarded("guard_text", part) for part in concat.nodes]
        super().visit_Template(node, frame)

    def _guarded(self, guard: str, expr: nodes.Node) -> nodes.Expr:
        call = nodes.Call(nodes.EnvironmentAttribute(guard, lineno=expr.lineno), [expr], [],
                          None, None, lineno=expr.lineno)
        call.set_environment(self.environment)
        return call


def _finalize(value: Any) -> Any:
    """Print ``None`` (JSON's null) as nothing, and count what is printed."""
    if value is None or isinstance(value, Undefined):
        return ""
    budget = _budget.get()
    if budget is not None:
        budget.printed += text_size(value, budget.max_printed)
        if budget.printed > budget.max_printed:
            raise BudgetExceeded(f"the template printed more than {budget.max_printed} "
                                 "characters")
        budget.check()
    return value


class _CompiledCache(BytecodeCache):
    """Compiled templates kept in memory, so loading the same files again (a reload, a
    test) skips Jinja2's compiler; an entry is used only while its source is unchanged."""

    MAX_ENTRIES = 512

    def __init__(self) -> None:
        self._entries: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            code = self._entries.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[bucket.key] = code


_compiled = _CompiledCache()


class Sandbox(ImmutableSandboxedEnvironment):
    """The Jinja2 environment for webhook templates; see the module docstring."""

    code_generator_class = _Guarded
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, loader: BaseLoader) -> None:
        super().__init__(
            loader=loader,
            undefined=ChainableUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
            finalize=_finalize,
            bytecode_cache=_compiled,
            extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
        )
        self.globals["range"] = bounded_range
        self.globals["namespace"] = BoundedNamespace
        self.globals.pop("lipsum", None)

    def guard_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Count and time every iteration of a ``{% for %}`` loop."""
        budget = _budget.get()
        if budget is None:
            yield from iterable
            return
        for item in iterable:
            budget.iterations += 1
            if budget.iterations > MAX_ITERATIONS:
                raise BudgetExceeded(f"more than {MAX_ITERATIONS} loop iterations")
            budget.check()
            yield item

    def guard_text(self, value: Any) -> Any:
        """Check one operand of ``~`` before it is turned into text."""
        check()
        check_size(value, "one side of ~")
        return value

    def getattr(self, obj: Any, attribute: str) -> Any:
        check()
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        check()
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"access to the attribute {attribute!r} of a "
                            f"{type(obj).__name__!r} object is not allowed")

    def wrap_str_format(self, value: Any) -> None:
        if getattr(value, "__name__", None) in ("format", "format_map") \
                and isinstance(getattr(value, "__self__", None), str):
            raise SecurityError("str.format is not available in templates; use ~ or the "
                                "format filter")
        return None

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        check()
        if isinstance(obj, Macro):
            for arg in (*args, *kwargs.values()):
                check_size(arg, "a macro argument")
        else:
            check_str_method(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(obj, Macro):
            check_size(result, "a macro's output")
        else:
            count_built(result)
        return result

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check()
        if operator == "*":
            _check_product(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            check_percent_format(left, right)
        elif operator == "+" and isinstance(left, str | list | tuple) \
                and isinstance(right, str | list | tuple):
            check_length(text_size(left) + text_size(right), "a sum")
        return super().call_binop(context, operator, left, right)


def _check_product(left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(count, int):
            check_length(text_size(seq) * max(count, 0), "a repeated value")
    if isinstance(left, int) and isinstance(right, int) \
            and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise BudgetExceeded("a product would be too large a number")


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 \
            and exponent > 0 and base.bit_length() * exponent > MAX_INT_BITS:
        raise BudgetExceeded("a power would be too large a number")
