"""The sandbox every template runs in.

Jinja2's ``ImmutableSandboxedEnvironment`` already keeps templates away from Python's
internals and from mutating lists and dicts. This subclass adds what a gateway needs:

- a **deadline**, checked at every attribute and item lookup, every call, every operator
  it intercepts, every filter and every loop iteration (each ``{% for %}`` is compiled
  with its iterable wrapped in :meth:`Sandbox.guard_iter`), so a slow template stops
  soon after its time is up even though a thread cannot be killed;
- a cap on the loop iterations of one render and on ``range()``;
- size checks *before* the operations that can blow a small value up (``'x' * n``,
  ``'%999999999s' % x``, ``2 ** n``, ``str.center`` and friends, ``str.join`` of a
  generator, ``int.to_bytes``, ``~``, ``namespace`` assignments, macro arguments), and a
  cap on everything printed;
- no constant folding: every filter and test asks for the context, so Jinja2 leaves
  ``{{ 1.5|num(10000000) }}`` to the render, with its budget, instead of computing it
  while the template loads (on the event loop, on a reload);
- a hard error, not a silent empty value, for unsafe attribute access
  (``''.__class__``, ``x|attr('__class__')``) and for ``str.format`` / ``format_map``;
- ``x.name`` on an object means its member ``name`` when there is one, so
  ``alert.values`` is Grafana's values and not the ``dict.values`` method.

The budget and the size checks are in :mod:`xmpp_post.templates.limits`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from jinja2 import BaseLoader, BytecodeCache, ChainableUndefined, nodes
from jinja2.bccache import Bucket
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Macro, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from xmpp_post.templates.limits import (
    MAX_ITERATIONS,
    BoundedNamespace,
    BudgetExceeded,
    bounded_range,
    check,
    check_length,
    check_percent_format,
    check_power,
    check_product,
    check_size,
    checked_call_args,
    count_built,
    current_budget,
    text_size,
)


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
    budget = current_budget()
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
        budget = current_budget()
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
                # Objects and arrays are the payload or its parts (a template builds
                # them only through checked operations): a large payload may be passed.
                if not isinstance(arg, dict | list):
                    check_size(arg, "a macro argument")
        else:
            args = checked_call_args(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(obj, Macro):
            check_size(result, "a macro's output")
        else:
            count_built(result)
        return result

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check()
        if operator == "*":
            check_product(left, right)
        elif operator == "**":
            check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            check_percent_format(left, right)
        elif operator == "+" and isinstance(left, str | list | tuple) \
                and isinstance(right, str | list | tuple):
            check_length(text_size(left) + text_size(right), "a sum")
        return super().call_binop(context, operator, left, right)
