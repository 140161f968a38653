"""No input within the limits makes the text helpers, a filter, a built-in template or
ntfy's Markdown take longer than linear time, or hold the GIL for long (issue 19, 1),
timed.

``tests/unit/test_linear_work.py`` counts the Python steps of the same calls, exactly; what
runs inside one call into C (the regular-expression engine over a whole text, a string
method) takes no step a count can see (Python 3.11 has no ``sys.monitoring``, and the
virtual machine the suite was written on offers no hardware counter of instructions),
and how long a call holds the GIL is a matter of time by nature. So these tests time the
calls, at sizes where the work in C shows: CPU time of the calling thread, the best of a
few runs, generous factors, and a thread that wakes every fraction of a millisecond to
see how long it was kept waiting. They take a dozen seconds, which is why they run with
the slow tier.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.helpers.linear import (
    CASE_IDS,
    CASES,
    HELPERS,
    WORST,
    adversarial,
    assert_linear,
    filter_names,
    filter_payload,
    filter_templates,
    gil_hold,
    rendering,
    vendor_case,
    with_texts,
)
from xmpp_post.templates import TemplateSet

SIZE = 16 * 1024
SOME = settings(max_examples=12, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(max_examples=5, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("name", sorted(HELPERS))
@SOME
@given(make=adversarial())
def test_text_helpers_take_linear_time(name: str, make: Callable[[int], str]) -> None:
    assert_linear(HELPERS[name], make, SIZE, name)


@pytest.fixture(scope="module")
def filtering(tmp_path_factory: pytest.TempPathFactory) -> TemplateSet:
    return filter_templates(tmp_path_factory.mktemp("filters"))


@pytest.mark.parametrize("name", filter_names())
@FEW
@given(make=adversarial())
def test_every_filter_takes_linear_time(filtering: TemplateSet, name: str,
                                        make: Callable[[int], str]) -> None:
    for shape in ("text", "list"):
        assert_linear(rendering(filtering, f"{shape}-{name}"),
                      lambda size: filter_payload(make(size)), SIZE, f"{name} over a {shape}")


@pytest.fixture(scope="module")
def builtins() -> TemplateSet:
    return TemplateSet.load(None)


@pytest.mark.parametrize(("template", "fixture"), CASES, ids=CASE_IDS)
@FEW
@given(make=adversarial())
def test_every_builtin_template_takes_linear_time(builtins: TemplateSet, template: str,
                                                  fixture: Path,
                                                  make: Callable[[int], str]) -> None:
    original, headers = vendor_case(fixture)
    assert_linear(rendering(builtins, template, headers),
                  lambda size: with_texts(original, make(size)), SIZE, template)


# The worst texts known: no call may hold the GIL for long (a loop that waits for it
# stalls).
@pytest.mark.parametrize("name", sorted(HELPERS))
def test_no_text_helper_holds_the_gil_for_long(name: str) -> None:
    for text in WORST:
        held = gil_hold(HELPERS[name], text, 0.1)
        assert held < 0.1, f"{name} held the GIL {held:.3f} s on {text[:12]!r}…"
