"""No input within the limits makes the text helpers, a filter, a built-in template or
ntfy's Markdown work longer than linearly, or hold the GIL for long (issue 19, 1).

Adversarial texts: long runs of each markup character and mark, nested marks, white
space without a final line break (``tests.helpers.linear``). A regular expression that scans
again from each start, or backtracks over what it read, takes about sixteen times as
long for a text four times as long.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.helpers.linear import adversarial, assert_linear, gil_hold
from xmpp_post.fronts.ntfy import Publication, compose, parse_actions, to_styled_text
from xmpp_post.fronts.ntfy.params import header_text
from xmpp_post.model import xml_text
from xmpp_post.templates import TemplateSet
from xmpp_post.templates import text as t

SIZE = 16 * 1024
SOME = settings(max_examples=12, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(max_examples=5, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PAYLOADS = Path(__file__).parents[1] / "payloads"

HELPERS: dict[str, Callable[[str], Any]] = {
    "tidy": t.tidy, "md_text": t.md_text, "slack_text": t.slack_text, "oneline": t.oneline,
    "firstline": t.firstline, "quote": t.quote, "xml_text": xml_text, "when": t.when,
    "duration": t.duration, "ntfy markdown": to_styled_text, "ntfy actions": parse_actions,
    "ntfy header": header_text,
    "ntfy compose": lambda text: compose(Publication("t", text, title=text, markdown=True)),
}


@pytest.mark.parametrize("name", sorted(HELPERS))
@SOME
@given(make=adversarial())
def test_text_helpers_are_linear(name: str, make: Callable[[int], str]) -> None:
    assert_linear(HELPERS[name], make, SIZE, name)


# Every filter, as a template uses it: over a text, and over a list of its pieces.
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


@pytest.fixture(scope="module")
def filtering(tmp_path_factory: pytest.TempPathFactory) -> TemplateSet:
    folder = tmp_path_factory.mktemp("filters")
    for name in filter_names():
        call = f"{name}({ARGUMENTS[name]})" if name in ARGUMENTS else name
        (folder / f"text-{name}.j2").write_text(f"{{{{ payload.text|{call} }}}}.")
        (folder / f"list-{name}.j2").write_text(f"{{{{ payload.pieces|{call} }}}}.")
    return TemplateSet.load(folder)


def rendering(templates: TemplateSet, name: str,
              headers: dict[str, str] | None = None) -> Callable[[Any], Any]:
    return lambda payload: templates.render_sync(name, payload, headers or {}, {})


@pytest.mark.parametrize("name", filter_names())
@FEW
@given(make=adversarial())
def test_every_filter_is_linear(filtering: TemplateSet, name: str,
                                make: Callable[[int], str]) -> None:
    def payload(size: int) -> dict[str, Any]:
        text = make(size)
        return {"text": text, "pieces": [text[i:i + 8] for i in range(0, len(text), 8)]}
    for shape in ("text", "list"):
        assert_linear(rendering(filtering, f"{shape}-{name}"), payload, SIZE,
                      f"{name} over a {shape}")


# Every built-in template, over its vendor's own payloads with their texts adversarial.
TEXT_KEYS = {"body", "message", "text", "description", "summary", "title", "content",
             "value", "note", "pretext", "fallback", "footer", "name", "tag_name"}
CASES = [(path.parent.name, path) for path in sorted(PAYLOADS.glob("*/*.json"))]


def with_texts(value: Any, text: str) -> Any:
    """``value`` with every string under a text-like key replaced by ``text``."""
    if isinstance(value, dict):
        return {key: text if key in TEXT_KEYS and isinstance(item, str)
                else with_texts(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [with_texts(item, text) for item in value]
    return value


@pytest.fixture(scope="module")
def builtins() -> TemplateSet:
    return TemplateSet.load(None)


@pytest.mark.parametrize(("template", "fixture"), CASES,
                         ids=[f"{path.parent.name}/{path.stem}" for _, path in CASES])
@FEW
@given(make=adversarial())
def test_every_builtin_template_is_linear(builtins: TemplateSet, template: str, fixture: Path,
                                          make: Callable[[int], str]) -> None:
    original = json.loads(fixture.read_text(encoding="utf-8"))
    event = re.sub(r"_(opened|merged|published|completed|created)$", "", fixture.stem)
    headers = {"X-GitHub-Event": event, "X-Gitea-Event": event}
    assert_linear(rendering(builtins, template, headers),
                  lambda size: with_texts(original, make(size)), SIZE, template)


# The worst texts known, at the largest size a filter takes (256 KiB) or ntfy is
# commonly given: no call may hold the GIL for long (a loop that waits for it stalls).
WORST = ["[" * 65536, "![" * 32768, "# a" + " " * 65536 + "x", " " * 65536 + "x",
         "\t" * 65536 + "x", "**" * 32768, "`" * 65536, "*a " * 21845, "<" * 65536,
         "~~" * 32768, "%(" * 32768, "\\*" * 32768, "_a" * 32768 + "\n"]


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_no_text_helper_holds_the_gil_for_long(name: str) -> None:
    for text in WORST:
        held = gil_hold(HELPERS[name], text, 0.1)
        assert held < 0.1, f"{name} held the GIL {held:.3f} s on {text[:12]!r}…"
