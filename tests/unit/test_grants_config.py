"""[accounts], [tokens] and [webhooks]: secret files, validation, ``token create``."""

from __future__ import annotations

import base64
import hashlib
import io
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.grants import secret_file, toml
from xmpp_post import config
from xmpp_post.auth.token_command import create_command
from xmpp_post.config.accounts import read_secret
from xmpp_post.config.live import LiveConfig
from xmpp_post.errors import ConfigError

JID = "alerts@example.org"
DIGEST = hashlib.sha256(b"xpt_x").hexdigest()


def load(tmp_path: Path, tables: dict[str, Any], **flags: Any) -> config.Config:
    path = tmp_path / "gw.toml"
    path.write_text(toml(tables))
    return config.load({"domain": ["example.org"], **flags}, environ={}, config_file=path)


def with_account(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    pw = secret_file(tmp_path, "alerts.pw", "hunter2\n")
    return {"accounts": {JID: {"password_file": str(pw)}}, **sections}


def refused(tmp_path: Path, tables: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, tables)
    return caught.value


# secret files -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "password"), [
    ("hunter2\n", "hunter2"), ("hunter2", "hunter2"), ("hunter2\n\n", "hunter2\n"),
    ("hunter2\r\n", "hunter2"), (" spaced out \n", " spaced out "),
])
def test_one_trailing_newline_is_not_part_of_the_password(tmp_path: Path, text: str,
                                                          password: str) -> None:
    assert read_secret(secret_file(tmp_path, "pw", text), "x") == password


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_file_group_or_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    pw = secret_file(tmp_path, "pw", "hunter2", mode)
    error = refused(tmp_path, {"accounts": {JID: {"password_file": str(pw)}}})
    assert error.setting == f'accounts."{JID}".password_file'
    assert "group or others" in error.problem and "hunter2" not in str(error)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_an_owner_only_file_is_accepted(tmp_path: Path, mode: int) -> None:
    pw = secret_file(tmp_path, "pw", "hunter2", mode)
    cfg = load(tmp_path, {"accounts": {JID: {"password_file": str(pw)}}})
    assert cfg.sections.get("accounts")[JID].password == "hunter2"
    assert "hunter2" not in repr(cfg)


@pytest.mark.parametrize(("entry", "words"), [
    ({"password": "hunter2"}, "refused"),
    ({}, "exactly one"),
    ({"password_file": "missing.pw"}, "cannot read"),
    ({"password_env": "XMPP_POST_TEST_UNSET"}, "unset"),
    ({"password_file": "empty.pw"}, "empty"),
    ({"password_file": "a.pw", "colour": "blue"}, "unknown key"),
])
def test_bad_account_entries_name_the_account(tmp_path: Path, entry: dict[str, str],
                                              words: str) -> None:
    secret_file(tmp_path, "empty.pw", "\n")
    error = refused(tmp_path, {"accounts": {JID: entry}})
    assert error.setting.startswith(f'accounts."{JID}"') and words in error.problem
    assert "hunter2" not in str(error)


def test_relative_paths_are_relative_to_the_file_and_env_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file(tmp_path, "a.pw", "from file\n")
    monkeypatch.setenv("XMPP_POST_TEST_PW", "from env")
    cfg = load(tmp_path, {"accounts": {JID: {"password_file": "a.pw"},
                                       "b@example.org": {"password_env": "XMPP_POST_TEST_PW"}}})
    accounts = cfg.sections.get("accounts")
    assert accounts[JID].password == "from file"
    assert accounts["b@example.org"].password == "from env"


def test_an_account_must_be_on_a_served_domain(tmp_path: Path) -> None:
    pw = secret_file(tmp_path, "pw", "x")
    error = refused(tmp_path, {"accounts": {"a@elsewhere.example": {"password_file": str(pw)}}})
    assert "served" in error.problem


# tokens and webhooks -------------------------------------------------------------------


def test_a_token_is_kept_by_its_digest_with_its_scope(tmp_path: Path) -> None:
    cfg = load(tmp_path, with_account(tmp_path, tokens={"ci": {
        "sha256": DIGEST.upper(), "account": JID, "to": ["Ops@Conference.Example.org"],
        "rate": "30/minute", "template": "grafana"}}))
    token = cfg.sections.get("tokens").by_digest[bytes.fromhex(DIGEST)]
    assert (token.name, token.account, token.to, str(token.rate), token.template) == \
        ("ci", JID, frozenset({"ops@conference.example.org"}), "30/minute", "grafana")


@pytest.mark.parametrize(("entry", "setting", "words"), [
    ({"sha256": "abc", "account": JID}, "tokens.ci.sha256", "64 hex"),
    ({"sha256": DIGEST}, "tokens.ci", "account is required"),
    ({"sha256": DIGEST, "account": "b@example.org"}, "tokens.ci.account", "[accounts]"),
    ({"sha256": DIGEST, "account": JID, "rate": "often"}, "tokens.ci.rate", "N/minute"),
    ({"sha256": DIGEST, "account": JID, "rate": "0/minute"}, "tokens.ci.rate", "at least"),
    ({"sha256": DIGEST, "account": JID, "to": []}, "tokens.ci.to", "non-empty"),
    ({"sha256": DIGEST, "account": JID, "to": ["not a jid"]}, "tokens.ci.to", "bare JID"),
    ({"token": "xpt_x", "account": JID}, "tokens.ci", "refused"),
    ({"sha256": DIGEST, "account": JID, "scope": "all"}, "tokens.ci", "unknown key"),
])
def test_bad_tokens_name_the_entry(tmp_path: Path, entry: dict[str, Any], setting: str,
                                   words: str) -> None:
    error = refused(tmp_path, with_account(tmp_path, tokens={"ci": entry}))
    assert error.setting == setting and words in error.problem, error


def test_two_tokens_with_one_digest_are_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, with_account(tmp_path, tokens={
        "a": {"sha256": DIGEST, "account": JID}, "b": {"sha256": DIGEST, "account": JID}}))
    assert "same token" in error.problem


def hook(tmp_path: Path, **entry: Any) -> dict[str, Any]:
    secret = secret_file(tmp_path, "hook.secret", "s3cret\n")
    return {"account": JID, "to": ["ops@example.org"], "verify": "github",
            "secret_file": str(secret), **entry}


def test_a_webhook_reads_its_secrets_and_defaults_its_template(tmp_path: Path) -> None:
    new = secret_file(tmp_path, "new.secret", "n3w\n")
    cfg = load(tmp_path, with_account(tmp_path, webhooks={"gh": hook(
        tmp_path, secret_file=[str(tmp_path / "hook.secret"), str(new)])}))
    gh = cfg.sections.get("webhooks")["gh"]
    assert (gh.secrets, gh.template, gh.to) == ((b"s3cret", b"n3w"), "github",
                                                ("ops@example.org",))
    assert "s3cret" not in repr(cfg)


def test_a_standard_webhooks_secret_is_decoded(tmp_path: Path) -> None:
    key = bytes(range(24))
    secret_file(tmp_path, "std.secret", "whsec_" + base64.b64encode(key).decode())
    cfg = load(tmp_path, with_account(tmp_path, webhooks={"std": hook(
        tmp_path, verify="standard-webhooks", secret_file="std.secret", template="github")}))
    assert cfg.sections.get("webhooks")["std"].secrets == (key,)


@pytest.mark.parametrize(("entry", "setting", "words"), [
    ({"verify": "md5"}, "webhooks.gh.verify", "one of"),
    ({"verify": "standard-webhooks"}, "webhooks.gh.secret_file", "whsec_"),
    ({"secret": "s3cret"}, "webhooks.gh", "refused"),
    ({"max_age": 0}, "webhooks.gh.max_age", "at least 1"),
    ({"max_age": 601, "verify": "grafana"}, "webhooks.gh.max_age", "idempotency_window"),
    ({"account": "b@example.org"}, "webhooks.gh.account", "[accounts]"),
])
def test_bad_webhooks_name_the_entry(tmp_path: Path, entry: dict[str, Any], setting: str,
                                     words: str) -> None:
    error = refused(tmp_path, with_account(tmp_path, webhooks={"gh": hook(tmp_path, **entry)}))
    assert error.setting == setting and words in error.problem, error


def test_two_webhooks_may_not_share_a_secret(tmp_path: Path) -> None:
    """The path's name is not signed: /hooks/a's delivery would pass at /hooks/b."""
    new = secret_file(tmp_path, "new.secret", "n3w\n")
    error = refused(tmp_path, with_account(tmp_path, webhooks={
        "gh": hook(tmp_path), "ops": hook(tmp_path, verify="gitea",
                                          secret_file=[str(new), "hook.secret"])}))
    assert error.setting == "webhooks.ops.secret_file" and "webhooks.gh" in error.problem
    assert "s3cret" not in str(error)


def test_a_template_that_does_not_exist_is_refused_before_serving(tmp_path: Path) -> None:
    cfg = load(tmp_path, with_account(tmp_path, webhooks={"gh": hook(tmp_path,
                                                                      template="nope")}))
    with pytest.raises(ConfigError) as caught:
        LiveConfig(cfg)
    assert caught.value.setting == "webhooks.gh.template"


def test_the_cli_refuses_a_readable_password_file(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from xmpp_post.cli import EXIT_CONFIG, main

    pw = secret_file(tmp_path, "pw", "hunter2", 0o644)
    path = tmp_path / "gw.toml"
    path.write_text(toml({"accounts": {JID: {"password_file": str(pw)}}}))
    assert main(["serve", "--domain", "example.org", "--config", str(path)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f'accounts."{JID}".password_file' in err and "hunter2" not in err


# xmpp-post token create ------------------------------------------------------------------


def test_token_create_prints_the_token_once_and_toml_that_loads(tmp_path: Path) -> None:
    out = io.StringIO()
    assert create_command("ci", "Alerts@Example.org", ["ops@example.org"], "grafana",
                          "10/minute", stdout=out) == 0
    text = out.getvalue()
    token = next(w for w in text.split() if w.startswith("xpt_"))
    assert len(base64.urlsafe_b64decode(token[4:] + "==")) * 8 >= 128
    assert text.count(token) == 1
    snippet = text[text.index("[tokens.ci]"):]
    entry = tomllib.loads(snippet)["tokens"]["ci"]
    assert entry["sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert (entry["account"], entry["to"], entry["template"], entry["rate"]) == \
        (JID, ["ops@example.org"], "grafana", "10/minute")
    cfg = load(tmp_path, with_account(tmp_path, tokens={"ci": entry}))
    assert "ci" in cfg.sections.get("tokens").by_name


@pytest.mark.parametrize(("args", "words"), [
    (("bad name", JID), "a name is"), (("ci", "nobody"), "bare JID"),
    (("ci", JID, (), None, "lots"), "N/minute"),
])
def test_token_create_refuses_bad_arguments(args: tuple[Any, ...], words: str) -> None:
    err = io.StringIO()
    assert create_command(*args, stdout=io.StringIO(), stderr=err) == 2
    assert words in err.getvalue()
