"""Payload parsing, delivery ids, the filters and the CLI helpers of webhook templates."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from xmpp_post.auth.webhooks import delivery_id
from xmpp_post.errors import BadRequest, UnsupportedMediaType
from xmpp_post.http.render import status_of
from xmpp_post.templates import filters, parse_payload, text
from xmpp_post.templates.template_command import NOTHING_SENT, list_command, render_command

PAYLOADS = Path(__file__).parents[1] / "payloads"

# parse_payload


@pytest.mark.parametrize("media_type", [
    "application/json", "application/json; charset=utf-8", "Application/JSON",
    "application/vnd.github+json",
])
def test_json_bodies(media_type: str) -> None:
    assert parse_payload(media_type, b'{"a": [1, "\\u00e9"]}') == {"a": [1, "é"]}


def test_json_with_a_byte_order_mark() -> None:
    assert parse_payload("application/json", '\ufeff{"a": 1}'.encode()) == {"a": 1}


def test_form_with_a_payload_field() -> None:
    body = b"payload=%7B%22zen%22%3A+%22Keep+it+simple.%22%7D"
    assert parse_payload("application/x-www-form-urlencoded", body) == \
        {"zen": "Keep it simple."}


@pytest.mark.parametrize("body", [b"text=hi", b"payload=%7B%7D&token=x", b"", b"a&b=c&"])
def test_other_forms_are_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_payload("application/x-www-form-urlencoded", body)
    assert caught.value.code == "invalid_form"


@pytest.mark.parametrize("media_type", [None, "", "text/plain", "multipart/form-data"])
def test_other_media_types_are_415(media_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse_payload(media_type, b"{}")
    assert status_of(caught.value) == 415


@pytest.mark.parametrize("body", [b"", b"{", b"{'a': 1}", b"[1,]", b"9" * 5000,
                                  b"[" * 100_000, b"{\"a\":" * 100_000,
                                  b"[" * 65 + b"]" * 65])
def test_bad_and_deep_json_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_payload("application/json", body)
    assert caught.value.code == "invalid_json"


def test_nesting_within_the_limit_is_fine() -> None:
    assert parse_payload("application/json", b"[" * 63 + b"[1]" + b"]" * 63) is not None


@pytest.mark.parametrize("media_type, body", [
    ("application/json", b'{"a": "\xff"}'),
    ("application/x-www-form-urlencoded", b"payload=%FF"),
])
def test_not_utf8_is_400(media_type: str, body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_payload(media_type, body)
    assert caught.value.code == "invalid_encoding"


# delivery_id (auth.webhooks'), which keys the idempotency store for every tool

@pytest.mark.parametrize("headers, expected", [
    ({"X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
     "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ({"x-gitea-delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473"},
     "f6266f16-1bf3-46a5-9ea4-602e06ead473"),
    ({"X-Forgejo-Delivery": "abc"}, "abc"),
    ({"X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e"},
     "13792a34-cac6-4fda-95a8-c58e00a3954e"),
    ({"X-Request-Id": "r1"}, None),
    ({"X-GitHub-Delivery": ""}, None),
    ({"X-GitHub-Delivery": "x" * 256}, None),
    ({"X-GitHub-Delivery": "caf\u00e9"}, None),
])
def test_delivery_id(headers: dict[str, str], expected: str | None) -> None:
    assert delivery_id(headers) == expected


# filters

@pytest.mark.parametrize("markup, shown", [
    ("<https://x.example/a|the label>", "the label (https://x.example/a)"),
    ("<https://x.example/a>", "https://x.example/a"),
    ("<https://x.example/?a=1&amp;b=2|q>", "q (https://x.example/?a=1&b=2)"),
    ("<!channel> hi <!everyone> all <!here|here> now", "hi all now"),
    ("<@U024BE7LH> and <@U1|ann>", "@U024BE7LH and @ann"),
    ("in <#C024BE7LR|general>", "in #general"),
    ("team <!subteam^SAZ94GDB8|@ops>", "team @ops"),
    ("at <!date^1392734382^{date}|Feb 18, 2014>", "at Feb 18, 2014"),
    ("<mailto:bob@example.org|Bob>", "Bob"),
    ("1 &lt; 2 &amp;&amp; 3 &gt; 2", "1 < 2 && 3 > 2"),
    ("*bold* _it_ ~s~ `code`", "*bold* _it_ ~s~ `code`"),
])
def test_slack_text(markup: str, shown: str) -> None:
    assert text.slack_text(markup) == shown


def test_md_text() -> None:
    source = ("<!-- template -->## Summary\n**Bold** and __under__ and ~~gone~~, "
              "[docs](https://d.example/x) ![img](https://d.example/i.png) `code`")
    assert text.md_text(source) == ("*Summary*\n*Bold* and _under_ and ~gone~, "
                                    "docs (https://d.example/x) img (https://d.example/i.png)"
                                    " `code`")


@pytest.mark.parametrize("value, shown", [
    ("2024-05-01T12:00:03.123456789Z", "2024-05-01 12:00 UTC"),
    ("2021-10-12T09:51:03.157076+02:00", "2021-10-12 07:51 UTC"),
    ("2016-08-12 15:23:28 UTC", "2016-08-12 15:23 UTC"),
    ("2024-05-01", "2024-05-01 00:00 UTC"),
    ("0001-01-01T00:00:00Z", ""),
    (1714564800, "2024-05-01 12:00 UTC"),
    (1714564800123, "2024-05-01 12:00 UTC"),
    ("1503435956.000247", "2017-08-22 21:05 UTC"),
    ("yesterday", "yesterday"),
    (None, ""),
    (10**30, ""),
])
def test_when(value: Any, shown: str) -> None:
    assert text.when(value) == shown


@pytest.mark.parametrize("seconds, shown", [
    (0, "0s"), (12, "12s"), (252, "4m 12s"), (130.889, "2m 11s"), (3600, "1h"),
    (3725, "1h 2m"), (90061, "1d 1h"), ("45", "45s"), ("soon", ""), (-1, ""),
])
def test_duration(seconds: Any, shown: str) -> None:
    assert text.duration(seconds) == shown


def test_small_filters() -> None:
    assert filters.cap([1, 2, 3], 2) == [1, 2]
    assert filters.cap("text") == [] and filters.cap(None) == [] and filters.cap(5) == []
    assert filters.more(list(range(12)), 10) == "… and 2 more"
    assert filters.more([1], 10) == "" and filters.more(None) == ""
    assert filters.shorten("abcdef", 4) == "abc…" and filters.shorten("abc", 4) == "abc"
    assert filters.oneline(" a\n\tb  c ") == "a b c"
    assert filters.firstline("\n  title \nbody") == "title"
    assert filters.quote("\na\n\nb\n") == "> a\n>\n> b"
    assert filters.code("ma`in") == "`ma'in`" and filters.code("") == ""
    assert filters.bold(" x y ") == "*x y*" and filters.bold(None) == ""
    assert filters.sha("a10867b14bb761a232cd") == "a10867b"
    assert filters.sha("a10867b14bb761a232cd", 10) == "a10867b14b"
    assert filters.refname("refs/heads/feature/x") == "feature/x"
    assert filters.refname("refs/tags/v1") == "v1" and filters.refname("main") == "main"
    assert filters.plural(1, "commit") == "1 commit"
    assert filters.plural([1, 2], "commit") == "2 commits"
    assert filters.plural(3, "child", "children") == "3 children"
    assert filters.num(93.23943737541908) == "93.24" and filters.num(1.0) == "1"
    assert filters.num(123456.7) == "123457" and filters.num("n/a") == "n/a"
    assert filters.pairs({"b": 2, "a": 1, "c": 3}, exclude={"c": 0}) == "a=1, b=2"
    assert filters.pairs({"b": 2, "a": 1}, exclude=["a"], sep=" ") == "b=2"
    assert filters.values({"z": 1, "alertname": "X", "b": 2}, first="alertname") == ["X", 2, 1]


# CLI helpers

def run_render(*args: Any, **kwargs: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = render_command(*args, stdout=out, stderr=err, **kwargs)
    return status, out.getvalue(), err.getvalue()


def test_render_command_prints_the_message() -> None:
    status, out, err = run_render("github", PAYLOADS / "github/push.json",
                                  ["X-GitHub-Event: push"], None)
    assert (status, err) == (0, "")
    assert out.startswith("*alice* pushed 3 commits to `main` of example/repo\n")


def test_render_command_shows_subject_and_nothing_sent(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text('{% do set_subject("S " ~ query.n) %}body')
    (tmp_path / "p.json").write_text(json.dumps({}))
    status, out, _ = run_render("t", tmp_path / "p.json", [], tmp_path, query=["n=1"])
    assert (status, out) == (0, "Subject: S 1\n\nbody\n")
    status, out, _ = run_render("github", PAYLOADS / "github/ping.json",
                                ["X-GitHub-Event:ping"], None)
    assert (status, out) == (0, NOTHING_SENT + "\n")


@pytest.mark.parametrize("args, status, message", [
    (("nope", PAYLOADS / "github/push.json", [], None), 1, "unknown_template: no template named"),
    (("slack", PAYLOADS / "no-such-file.json", [], None), 2, "cannot read"),
    (("slack", PAYLOADS / "slack/text.json", ["no colon"], None), 2, "--header"),
    (("slack", PAYLOADS / "slack/text.json", [], Path("/no/such/dir")), 2, "template_dir"),
])
def test_render_command_failures(args: tuple[Any, ...], status: int, message: str) -> None:
    code, out, err = run_render(*args)
    assert (code, out) == (status, "")
    assert message in err


def test_list_command(tmp_path: Path) -> None:
    (tmp_path / "github.j2").write_text("{#\nOur own GitHub messages.\n#}x")
    out = io.StringIO()
    assert list_command(tmp_path, stdout=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["alertmanager", "json", "built-in"]
    assert any(line.split()[:3] == ["github", "json", str(tmp_path / "github.j2")]
               for line in lines)
    assert "Our own GitHub messages." in out.getvalue()
    err = io.StringIO()
    (tmp_path / "bad.j2").write_text("{% if %}")
    assert list_command(tmp_path, stderr=err) == 2
    assert "bad.j2:1" in err.getvalue()
