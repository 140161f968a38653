"""Helpers for the tests that work stays linear and never holds the GIL for long.

Timing on a shared, noisy machine: CPU time of the calling thread (not wall time), the
best of a few runs, generous factors. Work that grows linearly takes about four times
as long for an input four times as long; quadratic work sixteen times.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from hypothesis import strategies as st

GROWTH = 8          # at most this much longer for an input four times as long...
FLOOR = 0.004       # ...give or take this many seconds
CEILING = 1.0       # a run this long is too long whatever it grows like

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
