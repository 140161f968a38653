"""Helpers for the tests that work stays linear and never holds the GIL for long.

Two measures. :func:`assert_linear_work` (``tests/unit/``) counts the Python steps a call
takes (the events a trace function sees: calls, lines, returns), with
:data:`xmpp_post.scan.BLOCK` made small, so that every call into the regular-expression
engine through ``scan`` reads a few dozen characters and their number shows in the count:
the count is exact, the same on any machine, and a few thousand characters tell linear
work (about four times the steps for a text four times as long) from quadratic (sixteen
times). What runs inside one call into C (the regular-expression engine over a whole text,
a string method) takes no steps it can see: :func:`assert_linear` and :func:`gil_hold`
(``tests/e2e/test_linear_time.py``) time it, with CPU time of the calling thread (not
wall time), the best of a few runs, generous factors.
"""

from __future__ import annotations

import gc
import json
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any

from hypothesis import strategies as st

from xmpp_post import scan
from xmpp_post.fronts.ntfy import Publication, compose, parse_actions, to_styled_text
from xmpp_post.fronts.ntfy.params import header_text
from xmpp_post.model import xml_text
from xmpp_post.templates import TemplateSet
from xmpp_post.templates import text as t

# The pieces adversarial texts are made of: each markup character, and the marks made
# of several.
PIECES = ["[", "]", "(", ")", "![", "](", "*", "**", "***", "_", "__", "~", "~~", "`", "``",
          "```", "#", "# ", "<", ">", "<!--", "-->", "<!", "<http://a|", "|", "&", "&amp;",
          "\\", "\\*", " ", "\t", "\n", "\r\n", "-", "--", "=", "%", "%(", "%0", "{", "}",
          ":", "/", ".", ",", ";", "'", '"', "a", "é", "http://", "https://x.y/", "=?",
          "?=", "\x01"]

units = st.lists(st.sampled_from(PIECES), min_size=1, max_size=4).map("".join)


@st.composite
def adversarial(draw: st.DrawFn) -> Callable[[int], str]:
    """A way to make a text of about ``size`` characters: a long run of a few markup
    pieces (between a short start and end, which may leave it without a final line
    break), or marks nested ``size`` deep."""
    start, unit, end = draw(units), draw(units), draw(units)
    if draw(st.booleans()):
        return lambda size: start + unit * max(size // len(unit), 1) + end
    opening, closing = draw(st.sampled_from(PIECES)), draw(st.sampled_from(PIECES))
    return lambda size: (start + opening * (size // (2 * len(opening)) or 1)
                         + closing * (size // (2 * len(closing)) or 1) + end)


# What is measured: the text helpers and ntfy's Markdown, every filter as a template uses
# it (over a text, and over a list of its pieces), every built-in template over its vendor's
# own payloads with their texts replaced.
HELPERS: dict[str, Callable[[str], Any]] = {
    "tidy": t.tidy, "md_text": t.md_text, "slack_text": t.slack_text, "oneline": t.oneline,
    "firstline": t.firstline, "quote": t.quote, "xml_text": xml_text, "when": t.when,
    "duration": t.duration, "ntfy markdown": to_styled_text, "ntfy actions": parse_actions,
    "ntfy header": header_text,
    "ntfy compose": lambda text: compose(Publication("t", text, title=text, markdown=True)),
}

# Filters that need arguments get typical ones.
ARGUMENTS = {"replace": "'a', 'bb'", "batch": "3", "slice": "3", "map": "'upper'",
             "select": "'lower'", "reject": "'upper'", "selectattr": "'x'",
             "rejectattr": "'x'", "groupby": "'x'", "attr": "'x'", "plural": "'word'",
             "join": "', '", "truncate": "10", "wordwrap": "10", "indent": "4",
             "center": "100", "default": "'x'", "d": "'x'", "shorten": "100",
             "pairs": "sep=' '", "format": "1, 2"}


def filter_names() -> list[str]:
    from jinja2.filters import FILTERS as DEFAULT_FILTERS

    from xmpp_post.templates.filters import OURS
    return sorted(set(DEFAULT_FILTERS) | set(OURS))


def filter_templates(folder: Path) -> TemplateSet:
    """Templates ``text-NAME`` and ``list-NAME`` in ``folder``: filter NAME over
    ``payload.text`` and over ``payload.pieces``."""
    for name in filter_names():
        call = f"{name}({ARGUMENTS[name]})" if name in ARGUMENTS else name
        (folder / f"text-{name}.j2").write_text(f"{{{{ payload.text|{call} }}}}.")
        (folder / f"list-{name}.j2").write_text(f"{{{{ payload.pieces|{call} }}}}.")
    return TemplateSet.load(folder)


def filter_payload(text: str) -> dict[str, Any]:
    return {"text": text, "pieces": [text[i:i + 8] for i in range(0, len(text), 8)]}


def rendering(templates: TemplateSet, name: str,
              headers: dict[str, str] | None = None) -> Callable[[Any], Any]:
    return lambda payload: templates.render_sync(name, payload, headers or {}, {})


PAYLOADS = Path(__file__).parents[1] / "payloads"
CASES = [(path.parent.name, path) for path in sorted(PAYLOADS.glob("*/*.json"))]
CASE_IDS = [f"{path.parent.name}/{path.stem}" for _, path in CASES]
TEXT_KEYS = {"body", "message", "text", "description", "summary", "title", "content",
             "value", "note", "pretext", "fallback", "footer", "name", "tag_name"}


def with_texts(value: Any, text: str) -> Any:
    """``value`` with every string under a text-like key replaced by ``text``."""
    if isinstance(value, dict):
        return {key: text if key in TEXT_KEYS and isinstance(item, str)
                else with_texts(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [with_texts(item, text) for item in value]
    return value


def vendor_case(fixture: Path) -> tuple[Any, dict[str, str]]:
    """A vendor's payload and the headers its event is named in."""
    event = re.sub(r"_(opened|merged|published|completed|created)$", "", fixture.stem)
    return (json.loads(fixture.read_text(encoding="utf-8")),
            {"X-GitHub-Event": event, "X-Gitea-Event": event})


# The worst texts known, at the largest size a filter takes (256 KiB) or ntfy is
# commonly given.
WORST = ["[" * 65536, "![" * 32768, "# a" + " " * 65536 + "x", " " * 65536 + "x",
         "\t" * 65536 + "x", "**" * 32768, "`" * 65536, "*a " * 21845, "<" * 65536,
         "~~" * 32768, "%(" * 32768, "\\*" * 32768, "_a" * 32768 + "\n"]


# Counting steps.
STEP_BLOCK = 64        # scan's stretch while steps are counted
SIZE = 512
STEP_GROWTH = 6        # at most this many times the steps for a text four times as long...
STEP_SLACK = 64        # ...give or take this many


def steps(function: Callable[[Any], Any], argument: Any) -> int:
    """The Python steps (calls, lines, returns) ``function(argument)`` takes in this
    thread (a raised error counts as done)."""
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        count += 1
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        with suppress(Exception):  # a refusal is an answer too
            function(argument)
    finally:
        sys.settrace(previous)
    return count


@contextmanager
def small_blocks(size: int = STEP_BLOCK) -> Iterator[None]:
    """``scan`` reads stretches of ``size`` characters while the block runs."""
    saved, scan.BLOCK = scan.BLOCK, size
    try:
        yield
    finally:
        scan.BLOCK = saved


def assert_linear_work(function: Callable[[Any], Any], make: Callable[[int], Any],
                       what: str = "") -> None:
    """``function`` takes at most :data:`STEP_GROWTH` times the steps for ``make(4 *
    SIZE)`` it takes for ``make(SIZE)``: about 4 when its work is linear, 16 when quadratic."""
    with small_blocks():
        small, large = steps(function, make(SIZE)), steps(function, make(4 * SIZE))
    assert large <= STEP_GROWTH * small + STEP_SLACK, (
        f"{what}: {small} steps for {SIZE} characters, {large} for {4 * SIZE}")


# Timing.
GROWTH = 8          # at most this much longer for an input four times as long...
FLOOR = 0.004       # ...give or take this many seconds
CEILING = 1.0       # a run this long is too long whatever it grows like


def cpu_seconds(function: Callable[[Any], Any], argument: Any, repeat: int = 3) -> float:
    """The least CPU time of this thread one call takes (a raised error counts as done)."""
    best = math.inf
    gc.disable()
    try:
        for _ in range(repeat):
            started = time.thread_time()
            with suppress(Exception):  # a refusal is an answer too
                function(argument)
            best = min(best, time.thread_time() - started)
            if best > CEILING:
                break
    finally:
        gc.enable()
    return best


def assert_linear(function: Callable[[Any], Any], make: Callable[[int], Any], size: int,
                  what: str = "") -> None:
    """``function`` takes about linear time in ``make(size)``'s size, and never long."""
    large = cpu_seconds(function, make(4 * size))
    assert large < CEILING, f"{what}: {large:.3f} s for an input of {4 * size}"
    small = cpu_seconds(function, make(size))
    assert large <= GROWTH * small + FLOOR, (
        f"{what}: {small * 1000:.1f} ms for {size}, {large * 1000:.1f} ms for {4 * size}")


@contextmanager
def longest_gil_hold() -> Iterator[list[float]]:
    """Measure, while the block runs, the longest a thread that only wakes up every
    fraction of a millisecond had to wait: how long the GIL was held at a stretch. The
    list it yields holds that many seconds once the block is done."""
    stop = threading.Event()
    longest = [0.0]

    def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.0002)
            now = time.perf_counter()
            longest[0] = max(longest[0], now - last)
            last = now

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    time.sleep(0.01)
    longest[0] = 0.0
    try:
        yield longest
    finally:
        stop.set()
        ticker.join()


def gil_hold(function: Callable[[Any], Any], argument: Any, bound: float,
             repeat: int = 3) -> float:
    """The longest ``function(argument)`` held the GIL at a stretch, the least of up to
    ``repeat`` runs: a run is repeated only while it seems to pass ``bound``, since a
    busy machine can leave the measuring thread unscheduled for a while, too."""
    least = math.inf
    for _ in range(repeat):
        with longest_gil_hold() as held, suppress(Exception):  # a refusal is an answer
            function(argument)
        least = min(least, held[0])
        if least < bound:
            break
    return least
