"""Settings: precedence, validation, documentation, and the console command."""

from __future__ import annotations

from pathlib import Path

import pytest

from xmpp_post import config
from xmpp_post.cli import EXIT_CONFIG, main
from xmpp_post.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    cfg = config.load({"domain": ["Example.ORG"]}, environ={})
    assert cfg.domain == ("example.org",)
    assert str(cfg.listen) == "127.0.0.1:5280"
    assert cfg.base_path == "/msg" and cfg.max_body == 64 * 1024
    assert cfg.xmpp_server is None and cfg.ca_file is None
    assert cfg.insecure_skip_tls_verify is False


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('domain = ["a.example"]\nmax_body = "1KiB"\nlisten = "0.0.0.0:1"\n'
                    'idle-timeout = 7\n')
    cfg = config.load({}, environ={}, config_file=path)
    assert (cfg.domain, cfg.max_body, str(cfg.listen), cfg.idle_timeout) == \
        (("a.example",), 1024, "0.0.0.0:1", 7.0)
    env = {"XMPP_POST_MAX_BODY": "2048", "XMPP_POST_DOMAIN": "b.example, c.example"}
    cfg = config.load({}, environ=env, config_file=path)
    assert cfg.max_body == 2048 and cfg.domain == ("b.example", "c.example")
    cfg = config.load({"max_body": "3MiB", "domain": ["d.example"]}, environ=env,
                      config_file=path)
    assert cfg.max_body == 3 << 20 and cfg.domain == ("d.example",)


def test_xmpp_server_port_defaults_to_5222() -> None:
    cfg = config.load({"domain": ["a.example"], "xmpp_server": "xmpp.a.example"}, environ={})
    assert cfg.xmpp_server == config.HostPort("xmpp.a.example", 5222)
    cfg = config.load({"domain": ["a.example"], "xmpp_server": "[::1]:5223"}, environ={})
    assert cfg.xmpp_server == config.HostPort("::1", 5223)


@pytest.mark.parametrize(("flags", "setting"), [
    ({}, "domain"),
    ({"domain": ["not a domain"]}, "domain"),
    ({"domain": ["a.example"], "listen": "nowhere"}, "listen"),
    ({"domain": ["a.example"], "listen": "host:99999"}, "listen"),
    ({"domain": ["a.example"], "xmpp_server": "host:0"}, "xmpp_server"),
    ({"domain": ["a.example"], "max_body": "lots"}, "max_body"),
    ({"domain": ["a.example"], "max_body": "0"}, "max_body"),
    ({"domain": ["a.example"], "ack_timeout": "-1"}, "ack_timeout"),
    ({"domain": ["a.example"], "max_sessions": "many"}, "max_sessions"),
    ({"domain": ["a.example"], "ca_file": "/nonexistent.pem"}, "ca_file"),
    ({"domain": ["a.example"], "base_path": "msg"}, "base_path"),
    ({"domain": ["a.example"], "log_level": "chatty"}, "log_level"),
    ({"domain": ["a.example"], "direct_tls": "maybe"}, "direct_tls"),
])
def test_bad_values_name_the_setting(flags: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config.load(flags, environ={})
    assert exc.value.setting == setting


def test_unknown_key_in_file(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('domain = ["a.example"]\npasword = "x"\n')
    with pytest.raises(ConfigError) as exc:
        config.load({}, environ={}, config_file=path)
    assert exc.value.setting == "pasword"


def test_every_setting_is_documented_in_readme_and_help() -> None:
    readme = (ROOT / "README.md").read_text()
    example = config.example_toml()
    for setting in config.SETTINGS:
        assert f"`{setting.flag}`" in readme, setting.name
        assert setting.env in readme, setting.name
        assert setting.env in example and setting.help.split()[0] in example


def test_bad_configuration_exits_non_zero_naming_the_setting(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--domain", "a.example", "--max-body", "huge"]) == EXIT_CONFIG
    assert "max_body" in capsys.readouterr().err
    assert main(["serve"]) == EXIT_CONFIG
    assert "domain" in capsys.readouterr().err


def test_uvloop_is_the_default_and_no_uvloop_turns_it_off() -> None:
    from xmpp_post import cli

    assert config.load({"domain": ["a.example"]}, environ={}).uvloop is True
    off = cli._parser().parse_args(["serve", "--domain", "a.example", "--no-uvloop"])
    assert off.uvloop is False
    assert config.load({"domain": ["a.example"]},
                       environ={"XMPP_POST_UVLOOP": "false"}).uvloop is False
    assert cli._loop_factory(False) is None
    uvloop = pytest.importorskip("uvloop")
    assert cli._loop_factory(True) is uvloop.new_event_loop
