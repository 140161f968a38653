"""A template's limits are checked before the work they bound (issue 19, finding 7).

Each example made a render (or the loading of a template) allocate hundreds of megabytes
or hold the GIL for seconds before the limit said no. Now each is refused at once: the
memory a render takes at its peak and the CPU time it spends are measured.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from xmpp_post.errors import Unprocessable
from xmpp_post.templates import TemplateSet

MEGABYTE = 1024 * 1024
Loader = Callable[..., TemplateSet]


@pytest.fixture
def load(tmp_path: Path) -> Loader:
    def loader(**files: str) -> TemplateSet:
        for name, source in files.items():
            (tmp_path / f"{name}.j2").write_text(source, encoding="utf-8")
        return TemplateSet.load(tmp_path)
    return loader


@contextmanager
def spending() -> Iterator[dict[str, float]]:
    """The peak of memory allocated and the CPU seconds spent while the block runs. The
    cyclic garbage collector is held meanwhile: a render that takes 0.02 s alone was
    charged 0.66 s once, after the whole suite had run, most likely by a collection of
    the heap the other tests left, which is not the render's work."""
    spent: dict[str, float] = {}
    gc.disable()
    tracemalloc.start()
    started = time.thread_time()
    try:
        yield spent
    finally:
        spent["seconds"] = time.thread_time() - started
        spent["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        gc.enable()


def refused_cheaply(templates: TemplateSet, payload: Any = None, *, words: str) -> None:
    with spending() as spent, pytest.raises(Unprocessable) as caught:
        templates.render_sync("t", payload, {}, {})
    assert caught.value.code == "template_error"
    assert words in caught.value.message, caught.value.message
    assert spent["peak"] < 16 * MEGABYTE, f"{spent['peak'] / MEGABYTE:.0f} MB allocated"
    assert spent["seconds"] < 0.5, f"{spent['seconds']:.2f} s spent"


# The examples of the finding, and their kin found since.
EXAMPLES = [
    # str.join of a generator: ~400 MB joined before the size was looked at
    ('{% set big = "x" * 200000 %}{{ big.join(range(2000)|map("string")) }}', None,
     "str.join() would be longer"),
    # one string held 5,000 times: 1 GB of text made by |string
    ('{{ {}.fromkeys(range(5000), "z" * 200000)|string }}', None, "string()"),
    ('{{ {}.fromkeys(range(5000), "z" * 200000)|shorten(10) }}', None, "the text of"),
    ('{{ {}.fromkeys(range(5000), "z" * 200000)|pairs }}', None, "pairs()"),
    ('{{ {}.fromkeys(range(5000), "z" * 200000) is lower }}', None, "the test lower"),
    ('{% do set_subject({}.fromkeys(range(5000), "z" * 200000)) %}x', None, "a subject"),
    # num computed 10 ** digits, digits taken from the payload: 18 s with the GIL held
    ("{{ payload.a|num(payload.a * 0 + 20000000) }}", {"a": 1}, "num(digits)"),
    ("{{ payload.a|round(payload.b) }}", {"a": int("9" * 4000), "b": -3_000_000},
     "round(precision)"),
    ("{{ (1).to_bytes(100000000, 'big')|length }}", None, "int.to_bytes()"),
    # a key that nests parentheses hid its width from the check
    ("{{ '%(a(b))50000000s' % {'a(b)': 1} }}", None, "too large"),
    # adding lists copies them again and again
    ("{{ range(10000)|batch(1)|list|sum(start=[]) }}", None, "sum() adds numbers"),
    # textwrap copies the rest of a long word for each piece it cuts
    ("{{ ('x' * 30000)|wordwrap(1) }}", None, "wordwrap(1)"),
    ("{{ payload|sort|first }}", list(range(20000)), "sort() takes at most"),
    # md_text took 3 s over a megabyte before its result was found too long
    ("{{ payload|md_text }}", "[" * 1_000_000, "md_text()"),
]


@pytest.mark.parametrize(("source", "payload", "words"), EXAMPLES,
                         ids=[source[:40] for source, _, _ in EXAMPLES])
def test_a_limit_is_checked_before_the_work(load: Loader, source: str, payload: Any,
                                            words: str) -> None:
    refused_cheaply(load(t=source), payload, words=words)


def test_a_constant_is_not_computed_while_the_template_loads(load: Loader) -> None:
    # Jinja2 folded a filter of constants at compile time: 6 s at start and on SIGHUP.
    TemplateSet.load(None)  # the built-ins compiled, so only this one is timed
    started = time.thread_time()
    templates = load(t="{{ 1.5|num(10000000) }}{{ ('x' * 10)|wordwrap(1) }}")
    assert time.thread_time() - started < 1.0
    refused_cheaply(templates, words="num(digits)")


def test_bounded_filters_still_do_their_work(load: Loader) -> None:
    templates = load(t="{{ payload.n|num(2) }} {{ payload.n|round(1) }} "
                       "{{ [1, 2.5]|sum }} {{ payload.big|num }} {{ 'a b c'|wordwrap(1) }} "
                       "{{ ', '.join(payload.words|map('upper')) }} {{ payload.words|sort }}")
    rendered = templates.render_sync("t", {"n": 3.14159, "big": 10**30,
                                           "words": ["b", "a"]}, {}, {})
    assert rendered.body == ("3.1 3.1 3.5 1000000000000000000000000000000 a\nb\nc "
                             "B, A ['a', 'b']")
