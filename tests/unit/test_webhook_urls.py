"""Webhook URLs without a server: the configuration, ``webhook create``, the scheme that
finds a webhook by its secret's digest, and the handler's pure parts."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.helpers.grants import secret_file, toml
from xmpp_post import config
from xmpp_post.auth import Presented
from xmpp_post.auth.webhook_command import create_command
from xmpp_post.auth.webhook_urls import WebhookUrlScheme, loggable_path, new_secret
from xmpp_post.auth.webhooks import WebhookScheme
from xmpp_post.cli import main
from xmpp_post.config.live import LiveConfig
from xmpp_post.errors import ClientError, ConfigError, NotFound, UnknownWebhookUrl
from xmpp_post.fronts.hooks.webhook_url_routes import (
    chosen_recipients,
    read_payload,
    success_reply,
)
from xmpp_post.http.render import render_error
from xmpp_post.templates import TemplateSet

JID = "alerts@example.org"
SECRET = "xph_" + "A" * 43
OPS, BOB = "ops@conference.example.org", "bob@example.org"


def entry(url_secret: str = SECRET, **more: Any) -> dict[str, Any]:
    return {"verify": "url", "sha256": hashlib.sha256(url_secret.encode()).hexdigest(),
            "account": JID, "to": [OPS], **more}


def load(tmp_path: Path, webhooks: dict[str, Any]) -> config.Config:
    pw = secret_file(tmp_path, "alerts.pw", "hunter2\n")
    path = tmp_path / "gw.toml"
    path.write_text(toml({"accounts": {JID: {"password_file": str(pw)}},
                          "webhooks": webhooks}))
    return config.load({"domain": ["example.org"]}, environ={}, config_file=path)


@pytest.fixture(scope="module")
def templates() -> TemplateSet:
    return TemplateSet.load(None)


# the configuration --------------------------------------------------------------------


def test_a_webhook_url_is_kept_by_its_digest_and_renders_with_slack(tmp_path: Path) -> None:
    hooks = load(tmp_path, {"kuma": entry(), "kuma_2": entry("xph_new", template="discord")}
                 ).sections.get("webhooks")
    kuma = hooks["kuma"]
    assert (kuma.verify, kuma.template, kuma.to, kuma.secrets) == ("url", "slack", (OPS,), ())
    assert hooks.by_digest[hashlib.sha256(SECRET.encode()).digest()] is kuma
    assert hooks["kuma_2"].template == "discord" and len(hooks.by_digest) == 2
    assert SECRET not in repr(hooks) and kuma.digest is not None
    assert kuma.digest.hex() not in repr(hooks)


@pytest.mark.parametrize(("hooks", "setting", "words"), [
    ({"k": entry(sha256="abc")}, "webhooks.k.sha256", "64 hex"),
    ({"k": {**entry(), "to": []}}, "webhooks.k.to", "non-empty"),
    ({"k": {k: v for k, v in entry().items() if k != "to"}}, "webhooks.k", "to is required"),
    ({"k": {k: v for k, v in entry().items() if k != "sha256"}}, "webhooks.k",
     "sha256 is required"),
    ({"k": entry(secret_file="x")}, "webhooks.k", "unknown key 'secret_file'"),
    ({"k": entry(secret=SECRET)}, "webhooks.k", "refused"),
    ({"k": entry(), "k2": entry()}, "webhooks.k2.sha256", "same URL as webhooks.k"),
    ({"xph_k": entry()}, "webhooks.xph_k", "xph_"),
    ({"k": entry(account="nobody@example.org")}, "webhooks.k.account", "[accounts]"),
])
def test_bad_webhook_urls_name_the_entry(tmp_path: Path, hooks: dict[str, Any],
                                         setting: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, hooks)
    assert caught.value.setting == setting and words in caught.value.problem, caught.value
    assert SECRET not in str(caught.value)


def test_a_signed_webhook_takes_no_sha256(tmp_path: Path) -> None:
    secret = secret_file(tmp_path, "gh.secret", "s3cret")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {"gh": {"verify": "github", "account": JID, "to": [OPS],
                               "secret_file": str(secret), "sha256": "0" * 64}})
    assert "unknown key 'sha256'" in caught.value.problem


# xmpp-post webhook create -------------------------------------------------------------


def test_webhook_create_prints_the_path_once_and_toml_that_loads(tmp_path: Path) -> None:
    out = io.StringIO()
    assert create_command("kuma", "Alerts@Example.org", [OPS, "Bob@Example.org"],
                          stdout=out) == 0
    text = out.getvalue()
    path = next(line for line in text.splitlines() if line.startswith("/hooks/"))
    secret = path.removeprefix("/hooks/")
    assert secret.startswith("xph_") and text.count(secret) == 1
    assert len(base64.urlsafe_b64decode(secret[4:] + "==")) * 8 >= 128
    snippet = tomllib.loads(text[text.index("[webhooks.kuma]"):])["webhooks"]["kuma"]
    assert snippet == {"verify": "url", "sha256": hashlib.sha256(secret.encode()).hexdigest(),
                       "account": JID, "to": [OPS, BOB], "template": "slack"}
    hooks = load(tmp_path, {"kuma": snippet}).sections.get("webhooks")
    assert hooks.by_digest[hashlib.sha256(secret.encode()).digest()].name == "kuma"


def test_webhook_create_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["webhook", "create", "gitea", "--account", JID, "--to", OPS,
                 "--template", "gitea"]) == 0
    assert 'template = "gitea"' in capsys.readouterr().out
    with pytest.raises(SystemExit):  # --to is required: a webhook URL names its recipients
        main(["webhook", "create", "gitea", "--account", JID])


@pytest.mark.parametrize(("args", "words"), [
    (("bad name", JID, [OPS]), "a name is"), (("k", "nobody", [OPS]), "bare JID"),
    (("xph_k", JID, [OPS]), "xph_"), (("k", JID, [OPS], "no such!"), "template name"),
])
def test_webhook_create_refuses_bad_arguments(args: tuple[Any, ...], words: str) -> None:
    err = io.StringIO()
    assert create_command(*args, stdout=io.StringIO(), stderr=err) == 2
    assert words in err.getvalue()


def test_secrets_are_new_each_time_and_url_safe() -> None:
    made = {new_secret() for _ in range(100)}
    assert len(made) == 100
    assert all(s.startswith("xph_") and s[4:].replace("-", "").replace("_", "").isalnum()
               for s in made)


# the scheme ---------------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path, templates: TemplateSet) -> LiveConfig:
    return LiveConfig(load(tmp_path, {"kuma": entry(to=[OPS, BOB])}), templates)


def test_the_scheme_finds_the_webhook_by_its_secret(live: LiveConfig) -> None:
    scheme = WebhookUrlScheme(live)
    sender = scheme.authenticate(Presented(path=f"/hooks/{SECRET}"))
    assert sender is not None
    assert (sender.jid, sender.password, sender.via) == (JID, "hunter2", "webhook:kuma")
    assert sender.scope.to == frozenset({OPS, BOB}) and sender.scope.template == "slack"
    for other in ("/msg/bob", "/hooks/kuma", "/hooks/xph"):
        assert scheme.authenticate(Presented(path=other)) is None


@pytest.mark.parametrize("path", [f"/hooks/{SECRET[:-1]}", f"/hooks/{SECRET}B",
                                  f"/hooks/{SECRET.lower()}", "/hooks/xph_",
                                  "/hooks/xph_\udcff"])
def test_an_unknown_secret_is_404_counted_as_a_failed_login(live: LiveConfig,
                                                            path: str) -> None:
    with pytest.raises(UnknownWebhookUrl) as caught:
        WebhookUrlScheme(live).authenticate(Presented(path=path))
    assert caught.value.subject == "webhook_url"
    answer = render_error(caught.value, 'Basic realm="x"')
    assert answer.status == 404 and "WWW-Authenticate" not in answer.headers
    assert isinstance(answer.body, bytes) and path[7:].encode(errors="replace") not in answer.body


def test_a_webhook_url_is_not_reachable_by_its_name(live: LiveConfig) -> None:
    with pytest.raises(NotFound):
        WebhookScheme(live).authenticate(Presented(path="/hooks/kuma"))


def test_a_reload_adds_and_revokes(tmp_path: Path, live: LiveConfig,
                                   templates: TemplateSet) -> None:
    scheme, new = WebhookUrlScheme(live), new_secret()
    live.swap(load(tmp_path, {"kuma_2": entry(new)}), templates)
    assert scheme.authenticate(Presented(path=f"/hooks/{new}")) is not None
    with pytest.raises(UnknownWebhookUrl):
        scheme.authenticate(Presented(path=f"/hooks/{SECRET}"))


def test_log_lines_get_the_path_cut_after_four_characters_of_the_secret() -> None:
    assert loggable_path(f"/hooks/{SECRET}") == "/hooks/xph_AAAA…"
    assert loggable_path("/hooks/xph_") == "/hooks/xph_…"
    assert loggable_path("/hooks/github") == "/hooks/github"
    assert loggable_path("/msg/bob") == "/msg/bob"


# what the handler reads ---------------------------------------------------------------


@pytest.mark.parametrize(("channel", "chosen"), [
    (None, (OPS, BOB)), ("", (OPS, BOB)), ("#", (OPS, BOB)),
    ("#ops", (OPS,)), ("ops", (OPS,)), ("OPS", (OPS,)), (" #bob ", (BOB,)),
    ("@bob", (BOB,)), (OPS, (OPS,)), ("Bob@Example.org", (BOB,)),
    ("#random", (OPS, BOB)), ("eve@example.org", (OPS, BOB)), (["#ops"], (OPS, BOB)),
    ("ops@example.org", (OPS, BOB)), ("#" + "o" * 5000, (OPS, BOB)),
])
def test_the_channel_picks_one_of_to_or_is_ignored(channel: Any,
                                                    chosen: tuple[str, ...]) -> None:
    payload = {"text": "hi"} if channel is None else {"text": "hi", "channel": channel}
    assert chosen_recipients(payload, (OPS, BOB)) == chosen


def test_a_local_part_two_of_to_share_picks_neither() -> None:
    to = ("ops@conference.example.org", "ops@example.org")
    assert chosen_recipients({"channel": "#ops"}, to) == to
    assert chosen_recipients({"channel": "ops@example.org"}, to) == ("ops@example.org",)
    assert chosen_recipients(["not", "an", "object"], to) == to


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", json.dumps({"text": "hi"})),
    ("application/json; charset=utf-8", json.dumps({"text": "hi"})),
    ("application/x-www-form-urlencoded", urlencode({"payload": json.dumps({"text": "hi"})})),
    ("application/x-www-form-urlencoded", json.dumps({"text": "hi"})),  # curl -d '{…}'
    (None, " " + json.dumps({"text": "hi"})),
])
def test_slack_payloads_are_read_as_slack_reads_them(content_type: str | None,
                                                     body: str) -> None:
    assert read_payload(content_type, body.encode()) == {"text": "hi"}


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/x-www-form-urlencoded", "text=hi"), (None, "hi"),
    ("application/json", "{nope"),
])
def test_anything_else_is_refused(content_type: str | None, body: str) -> None:
    with pytest.raises(ClientError):
        read_payload(content_type, body.encode())


def test_the_gateway_s_own_answer_becomes_slack_s() -> None:
    assert [success_reply(r) for r in ("json", "slack", "discord")] == \
        ["slack", "slack", "discord"]
