"""No input within the limits makes the text helpers, a filter, a built-in template or
ntfy's Markdown work longer than linearly (issue 19, 1), counted in Python steps.

Adversarial texts: long runs of each markup character and mark, nested marks, white
space without a final line break (``tests.helpers.linear``). The steps a call takes are
counted with ``scan`` reading small stretches, so that a helper which scans again from each
start, or walks its matches in a loop inside a loop, takes about sixteen times the steps
for a text four times as long. The count is exact: the test is as quick and as sure on a
busy machine as on an idle one. Work inside one call into C (a regular expression over a
whole text, a string method) is timed in ``tests/e2e/test_linear_time.py``, with how long
a call holds the GIL.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.helpers import examples
from tests.helpers.linear import (
    CASE_IDS,
    CASES,
    HELPERS,
    adversarial,
    assert_linear_work,
    filter_names,
    filter_payload,
    filter_templates,
    rendering,
    steps,
    vendor_case,
    with_texts,
)
from xmpp_post import scan
from xmpp_post.templates import TemplateSet

SOME = settings(max_examples=examples(12), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(max_examples=examples(5), deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("name", sorted(HELPERS))
@SOME
@given(make=adversarial())
def test_text_helpers_are_linear(name: str, make: Callable[[int], str]) -> None:
    assert_linear_work(HELPERS[name], make, name)


@pytest.fixture(scope="module")
def filtering(tmp_path_factory: pytest.TempPathFactory) -> TemplateSet:
    return filter_templates(tmp_path_factory.mktemp("filters"))


@pytest.mark.parametrize("name", filter_names())
@FEW
@given(make=adversarial())
def test_every_filter_is_linear(filtering: TemplateSet, name: str,
                                make: Callable[[int], str]) -> None:
    for shape in ("text", "list"):
        assert_linear_work(rendering(filtering, f"{shape}-{name}"),
                           lambda size: filter_payload(make(size)), f"{name} over a {shape}")


@pytest.fixture(scope="module")
def builtins() -> TemplateSet:
    return TemplateSet.load(None)


@pytest.mark.parametrize(("template", "fixture"), CASES, ids=CASE_IDS)
@FEW
@given(make=adversarial())
def test_every_builtin_template_is_linear(builtins: TemplateSet, template: str, fixture: Path,
                                          make: Callable[[int], str]) -> None:
    original, headers = vendor_case(fixture)
    assert_linear_work(rendering(builtins, template, headers),
                       lambda size: with_texts(original, make(size)), template)


# The measure itself: it passes linear work and fails quadratic work, whether the work
# is Python's or the regular-expression engine's reached through scan.
STAR = re.compile(r"\*")


def linear(text: str) -> int:
    return sum(1 for _ in scan.finditer(STAR, text, reach=1))


def rescanning(text: str) -> int:
    """Finds each star by scanning again from the start: quadratic."""
    found = 0
    while (match := scan.search(STAR, text, reach=1)) is not None:
        found += 1
        text = text[:match.start()] + "." + text[match.end():]
    return found


def pairs(text: str) -> int:
    """Compares each line with every other: quadratic."""
    lines = text.splitlines()
    return sum(1 for a in lines for b in lines if a == b)


def test_the_count_tells_linear_work_from_quadratic() -> None:
    def make(size: int) -> str:
        return ("a" * 31 + "*\n") * (size // 33)

    assert_linear_work(linear, make)
    for quadratic in (rescanning, pairs):
        with pytest.raises(AssertionError, match="steps for"):
            assert_linear_work(quadratic, make, quadratic.__name__)


def test_the_count_is_the_same_each_time() -> None:
    text = "*a " * 1000
    assert len({steps(HELPERS["ntfy markdown"], text) for _ in range(3)}) == 1


def test_the_count_leaves_a_tracer_in_place() -> None:
    def tracer(*args: Any) -> None:
        return None

    saved = sys.gettrace()
    sys.settrace(tracer)
    try:
        steps(len, "x")
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(saved)
