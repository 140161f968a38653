"""User templates, the sandbox and the limits of one render."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from xmpp_post.errors import ConfigError, GatewayError, NotFound, Unprocessable
from xmpp_post.http.render import status_of
from xmpp_post.templates import Limits, Rendered, TemplateSet, engine
from xmpp_post.testing import ManualClock

Loader = Callable[..., TemplateSet]


@pytest.fixture
def load(tmp_path: Path) -> Loader:
    """Write the given NAME -> source files into a template_dir and load it."""
    def loader(limits: Limits | None = None, **files: str) -> TemplateSet:
        for name, source in files.items():
            (tmp_path / f"{name}.j2").write_text(source, encoding="utf-8")
        return TemplateSet.load(tmp_path, limits=limits)
    return loader


def render(templates: TemplateSet, name: str = "t", payload: Any = None,
           headers: dict[str, str] | None = None,
           query: dict[str, str] | None = None) -> Rendered:
    return templates.render_sync(name, payload, headers or {}, query or {})


def refused(templates: TemplateSet, name: str = "t", payload: Any = None) -> Unprocessable:
    with pytest.raises(Unprocessable) as caught:
        render(templates, name, payload)
    assert status_of(caught.value) == 422
    return caught.value


# What a template sees and chooses

def test_context_payload_query_and_headers_without_credentials(load: Loader) -> None:
    templates = load(t="{{ payload.a.b }} {{ query.x }} {{ headers|dictsort }}")
    headers = {"Authorization": "Basic c2VjcmV0", "Cookie": "s=1", "X-Gitlab-Token": "tok",
               "Proxy-Authorization": "p", "X-GitHub-Event": "push"}
    text = render(templates, payload={"a": {"b": "B"}}, headers=headers,
                  query={"x": "Q"}).body
    assert text == "B Q [('x-github-event', 'push')]"


def test_missing_values_and_null_print_as_nothing(load: Loader) -> None:
    templates = load(t="[{{ payload.no.such.thing }}][{{ payload.n }}][{{ payload.x|length }}]")
    assert render(templates, payload={"n": None}).body == "[][][0]"


def test_members_win_over_dict_methods(load: Loader) -> None:
    templates = load(t="{{ payload.values }} {{ payload.items }}")
    assert render(templates, payload={"values": "v", "items": "i"}).body == "v i"


def test_set_subject_and_skip(load: Loader) -> None:
    templates = load(t='{% do set_subject("Build\n " ~ payload.n) %}Build {{ payload.n }}',
                     s="{% if payload.quiet %}{% do skip() %}{% endif %}text")
    assert render(templates, payload={"n": 7}) == Rendered("Build 7", "Build 7", False)
    assert render(templates, "s", {"quiet": True}) == Rendered(None, None, True)
    assert render(templates, "s", {"quiet": False}).body == "text"


def test_empty_result_is_missing_body(load: Loader) -> None:
    templates = load(t="{% if payload.x %}{{ payload.x }}{% endif %}\n   \n")
    error = refused(templates, payload={})
    assert error.code == "missing_body"
    assert "skip()" in error.message


def test_output_is_tidied_and_xml_safe(load: Loader) -> None:
    templates = load(t="\n\n{{ payload.s }}   \n\n\n\nend\n\n")
    text = render(templates, payload={"s": "a\x00b\x1bc\ud800d\ufffe\r\ne"}).body
    assert text == "abcd\ne\n\nend"


def test_loop_controls_work(load: Loader) -> None:
    templates = load(t="{% for i in range(9) %}{% if i > 2 %}{% break %}{% endif %}{{ i }}"
                       "{% endfor %}")
    assert render(templates).body == "012"


# Loading

def test_user_template_replaces_a_builtin_and_keeps_its_reply(load: Loader) -> None:
    templates = load(slack="mine: {{ payload.text }}", github="{#\nOurs.\nreply: slack\n#}x")
    assert render(templates, "slack", {"text": "hi"}).body == "mine: hi"
    assert templates.reply("slack") == "slack"
    assert templates.reply("github") == "slack"
    assert templates.describe()["github"] == "Ours."
    assert not templates.info("slack").builtin and templates.info("gitlab").builtin


def test_partials_are_not_templates_but_can_be_imported(load: Loader) -> None:
    templates = load(_lib="{% macro hi(n) %}hi {{ n }}{% endmacro %}",
                     t='{% import "_lib.j2" as lib %}{{ lib.hi(payload) }}')
    assert "_lib" not in templates.names()
    assert render(templates, payload="bob").body == "hi bob"
    with pytest.raises(NotFound) as caught:
        render(templates, "_lib")
    assert caught.value.code == "unknown_template"


def test_unknown_template_is_404(load: Loader) -> None:
    with pytest.raises(NotFound) as caught:
        render(load(), "nope")
    assert (status_of(caught.value), caught.value.code) == (404, "unknown_template")


def test_compile_error_names_file_and_line(load: Loader, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(bad="line one\n{{ payload.x }}\n{% if payload %}\nno endif\n")
    assert caught.value.setting == "template_dir"
    assert f"{tmp_path / 'bad.j2'}:" in caught.value.problem
    assert "unexpected end of template" in caught.value.problem.lower()


def test_unknown_filter_is_a_load_error(load: Loader, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(bad="ok\n{{ payload|no_such_filter }}")
    assert f"{tmp_path / 'bad.j2'}:2:" in caught.value.problem


@pytest.mark.parametrize("files", [{"my.template": "x"}, {"ok": "{#\nreply: xml\n#}x"}])
def test_bad_names_and_replies_are_load_errors(load: Loader, files: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load(**files)


def test_template_dir_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="template_dir"):
        TemplateSet.load(tmp_path / "missing")


def test_render_error_names_template_and_line(load: Loader) -> None:
    templates = load(t="one\ntwo\n{{ payload.n / 0 }}\n",
                     _lib="{% macro boom() %}\n{{ 1 / 0 }}\n{% endmacro %}",
                     u='{% import "_lib.j2" as lib %}\n{{ lib.boom() }}')
    error = refused(templates, payload={"n": 1})
    assert error.code == "template_error"
    assert error.message.startswith("template 't', line 3: ZeroDivisionError")
    assert refused(templates, "u").message.startswith("template 'u', _lib.j2 line 2:")


def test_include_of_a_missing_template(load: Loader) -> None:
    error = refused(load(t='{% include "nowhere.j2" %}'))
    assert "no template 'nowhere.j2'" in error.message


# The sandbox

@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ payload|attr('format') }}",
    "{{ payload|attr('__class__') }}",
    "{{ ''.format }}",
    "{{ 'a{0.__class__}b'.format_map(payload) }}",
    "{{ {'a': 1}.pop }}",
    "{{ range.__globals__ }}",
    "{{ set_subject.__self__ }}",
    "{{ cycler.__init__.__globals__ }}",
])
def test_python_internals_are_refused(load: Loader, source: str) -> None:
    error = refused(load(t=source), payload="text")
    assert error.code == "template_error"
    assert "line 1" in error.message


@pytest.mark.parametrize("source, problem", [
    ("{% for i in range(10**9) %}x{% endfor %}", "range() is limited"),
    ("{{ 'x' * 10**9 }}", "longer than"),
    ("{{ [payload] * 10**6 }}", "longer than"),
    ("{{ 2 ** (10 ** 9) }}", "too large a number"),
    ("{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}"
     "{% endfor %}", "too large a number"),
    ("{{ '%999999999d' % 1 }}", "too large"),
    ("{{ '%*d' % (999999999, 1) }}", "too large"),
    ("{{ '%0999999999d'|format(1) }}", "too large"),
    ("{{ 'x'|center(10**9) }}", "longer than"),
    ("{{ 'x'.rjust(10**9) }}", "too long"),
    ("{{ ('\t' * 200000).expandtabs(200000) }}", "longer than"),
    ("{{ (payload * 2000).translate({48: payload * 100}) }}", "longer than"),
    ("{{ payload.encode().ljust(10**9) }}", "too long"),
    ("{{ ('%(a)s' * 1000) % {'a': payload * 100} }}", "longer than"),
    ("{{ ('%(a)s' * 1000)|format(a=payload * 100) }}", "longer than"),
    ("{{ (payload * 2000)|replace('', payload) }}", "longer than"),
    ("{{ ([payload * 2000] * 100)|join }}", "longer than"),
    ("{{ [payload, payload]|batch(10**6, payload)|list }}", "longer than"),
    ("{{ payload|indent(10**9) }}", "longer than"),
    ("{{ payload|tojson(10**6) }}", "indent"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}", "longer than"),
    ("{% macro d(s) %}{{ d(s ~ s) }}{% endmacro %}{{ d('ab') }}", "longer than"),
    ("{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}", "recursive"),
    ("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
     "loop iterations"),
    ("{% set big %}{% for i in range(9000) %}{{ payload * 200 }}{% endfor %}{% endset %}",
     "printed more than"),
])
def test_resource_limits(load: Loader, source: str, problem: str) -> None:
    error = refused(load(t=source), payload="0123456789" * 10)
    assert error.code == "template_error"
    assert problem in error.message


def test_a_stream_of_large_values_stops_early(load: Loader) -> None:
    templates = load(t="{% for x in range(10000)|map('replace', '', payload) %}{% endfor %}",
                     u="{{ (range(10000)|map('replace', '', payload)|list)[0]|length }}")
    for name in ("t", "u"):
        error = refused(templates, name, payload="x" * 50_000)
        assert "made more than" in error.message


def test_output_limit_is_checked_while_streaming(load: Loader) -> None:
    templates = load(Limits(max_output=1000),
                     t="{% for i in range(5000) %}{{ payload }}\n{% endfor %}")
    error = refused(templates, payload="0123456789")
    assert "longer than 1000 characters" in error.message
    assert render(load(Limits(max_output=1000), u="{{ payload }}"), "u", "x" * 900).body


# Each iteration takes a while but makes little: only the deadline can stop it. The
# render's clock moves 10 ms each time it is read, so the deadline passes after some twenty
# readings, on a quick machine as on a busy one.
SLOW = "{% for i in range(10000) %}{% set n = payload|wordcount %}{% endfor %}done"
SLOW_PAYLOAD = "a b " * 25_000


def test_a_slow_template_stops_at_its_deadline(load: Loader) -> None:
    clock = ManualClock(0.0, step=0.01)
    templates = load(Limits(seconds=0.2, clock=clock), t=SLOW)
    error = refused(templates, payload=SLOW_PAYLOAD)
    assert "longer than 0.2 s" in error.message
    assert clock.now < 0.2 + 0.05  # at its deadline: a reading or two past it


async def test_a_slow_render_stops_in_its_thread(load: Loader) -> None:
    templates = load(Limits(seconds=0.3, clock=ManualClock(step=0.01)), t=SLOW)
    with pytest.raises(Unprocessable) as caught:
        await templates.render("t", SLOW_PAYLOAD, {}, {})
    assert caught.value.code == "template_error"


async def test_render_runs_off_the_event_loop(load: Loader,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    templates = load(t="x")
    started, served = threading.Event(), threading.Event()

    def waits_for_the_loop(*args: Any, **kwargs: Any) -> Rendered:
        started.set()
        if not served.wait(10):
            raise AssertionError("the event loop stood still while a template rendered")
        return Rendered("rendered", None, False)

    monkeypatch.setattr(templates, "render_sync", waits_for_the_loop)
    rendering = asyncio.create_task(templates.render("t", None, {}, {}))
    assert await asyncio.to_thread(started.wait, 10)
    served.set()  # the loop runs this while the render is in progress
    assert (await rendering).body == "rendered"


async def test_render_gives_up_waiting_for_a_stuck_thread(
        load: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    templates = load(Limits(seconds=0), t="x")
    monkeypatch.setattr(engine, "GRACE_SECONDS", 0)
    unstuck = threading.Event()
    monkeypatch.setattr(templates, "render_sync", lambda *args, **kwargs: unstuck.wait(10))
    try:
        with pytest.raises(Unprocessable, match=r"longer than 0 s"):
            await templates.render("t", None, {}, {})
    finally:
        unstuck.set()


async def test_async_render_matches_sync(load: Loader) -> None:
    templates = load(t="{{ payload.a }}")
    assert await templates.render("t", {"a": "x"}, {}, {}) == Rendered("x", None, False)
    with pytest.raises(NotFound):
        await templates.render("missing", {}, {}, {})


def test_errors_are_gateway_errors_with_a_4xx_status(load: Loader) -> None:
    with pytest.raises(GatewayError) as caught:
        render(load(t="{{ payload.x.y() }}"), payload={})
    assert 400 <= status_of(caught.value) < 500
