"""[bots.NAME]: parsed and validated before anything starts, each error naming its
setting; bots refuse to run without a state directory."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.grants import secret_file, toml
from xmpp_post import config
from xmpp_post.bots_setup import BotHost
from xmpp_post.config.bots import Bot, redacted_url
from xmpp_post.errors import ConfigError
from xmpp_post.metrics import Metrics
from xmpp_post.service import session_options
from xmpp_post.state.memory_lasting import memory_lasting

JID = "alerts@example.org"
KEY = b"0123456789abcdef0123"
WHSEC = "whsec_" + base64.b64encode(KEY).decode()


def load(tmp_path: Path, bot: dict[str, Any], **extra: Any) -> config.Config:
    pw = secret_file(tmp_path, "alerts.pw", "hunter2\n")
    whsec = secret_file(tmp_path, "bot.whsec", WHSEC + "\n")
    entry = {"account": JID, "url": "https://hooks.example.org/xmpp",
             "secret_file": str(whsec), **bot}
    tables = {"accounts": {JID: {"password_file": str(pw)}}, "bots": {"oncall": entry},
              **extra}
    path = tmp_path / "gw.toml"
    path.write_text(toml(tables))
    return config.load({"domain": ["example.org"]}, environ={}, config_file=path)


def test_a_bot_with_its_defaults(tmp_path: Path) -> None:
    bot: Bot = load(tmp_path, {}).sections.get("bots")["oncall"]
    assert (bot.account, bot.secret, bot.rooms, bot.nick, bot.mentions_only) == (
        JID, KEY, (), "alerts", True)
    assert (bot.alertmanager_url, bot.allow, bot.retry_for) == (None, None, 3600.0)
    assert "0123" not in repr(bot)


def test_a_bot_with_every_setting(tmp_path: Path) -> None:
    bot: Bot = load(tmp_path, {
        "rooms": ["Ops@Conference.example.org"], "nick": "pager", "mentions_only": False,
        "alertmanager_url": "http://alertmanager:9093/", "allow": ["Carol@example.org"],
        "retry_for": "30m"}).sections.get("bots")["oncall"]
    assert bot.rooms == ("ops@conference.example.org",) and bot.nick == "pager"
    assert bot.alertmanager_url == "http://alertmanager:9093"
    assert bot.allow == frozenset({"carol@example.org"}) and bot.retry_for == 1800.0
    assert bot.mentions_only is False


@pytest.mark.parametrize(("bot", "setting"), [
    ({"url": "ftp://x"}, "bots.oncall.url"),
    ({"url": "https://"}, "bots.oncall.url"),
    ({"account": "not a jid"}, "bots.oncall.account"),
    ({"account": "other@example.org"}, "bots.oncall.account"),
    ({"nick": " "}, "bots.oncall.nick"),
    ({"rooms": ["ops"]}, "bots.oncall.rooms"),
    ({"rooms": "ops@conference.example.org"}, "bots.oncall.rooms"),
    ({"mentions_only": "yes"}, "bots.oncall.mentions_only"),
    ({"alertmanager_url": "alertmanager:9093"}, "bots.oncall.alertmanager_url"),
    ({"allow": ["x"]}, "bots.oncall.allow"),
    ({"retry_for": "forever"}, "bots.oncall.retry_for"),
    ({"retry_for": 0}, "bots.oncall.retry_for"),
    ({"retry_for": True}, "bots.oncall.retry_for"),
    ({"secret": "inline"}, "bots.oncall"),
    ({"colour": "red"}, "bots.oncall"),
])
def test_a_bad_bot_names_its_setting(tmp_path: Path, bot: dict[str, Any],
                                     setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, bot)
    assert caught.value.setting == setting


def test_the_secret_must_be_whsec_base64(tmp_path: Path) -> None:
    bad = secret_file(tmp_path, "plain.secret", "not-a-standard-secret\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {"secret_file": str(bad)})
    assert caught.value.setting == "bots.oncall.secret_file"


def test_one_bot_per_account(tmp_path: Path) -> None:
    pw = secret_file(tmp_path, "alerts.pw", "hunter2\n")
    whsec = secret_file(tmp_path, "bot.whsec", WHSEC)
    entry = {"account": JID, "url": "https://h.example/x", "secret_file": str(whsec)}
    path = tmp_path / "gw.toml"
    path.write_text(toml({"accounts": {JID: {"password_file": str(pw)}},
                          "bots": {"one": entry, "two": entry}}))
    with pytest.raises(ConfigError) as caught:
        config.load({"domain": ["example.org"]}, environ={}, config_file=path)
    assert caught.value.setting == "bots.two.account"


def test_bots_refuse_to_run_without_a_state_directory(tmp_path: Path) -> None:
    cfg = load(tmp_path, {})
    with pytest.raises(ConfigError) as caught:
        BotHost(cfg, memory_lasting(), Metrics(), session_options(cfg))
    assert caught.value.setting == "state_dir"
    without = config.load({"domain": ["example.org"]}, environ={})
    BotHost(without, memory_lasting(), Metrics(), session_options(without))  # no bots: fine


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:pw@hooks.example.org:8443/x/y?token=abc#f",
     "https://hooks.example.org:8443/x/y?…"),
    ("http://[::1]/hook", "http://[::1]/hook"),
])
def test_logged_urls_hold_no_credentials(url: str, shown: str) -> None:
    assert redacted_url(url) == shown
