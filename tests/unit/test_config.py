"""Settings: precedence, validation, documentation, and the console command."""

from __future__ import annotations

import dataclasses
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


def test_every_setting_is_documented_in_the_reference_and_the_example() -> None:
    reference = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    example = config.example_toml()
    for setting in config.SETTINGS:
        assert f"`{setting.flag}" in reference, setting.name
        assert setting.env in reference, setting.name
        assert setting.env in example and setting.help.split()[0] in example


# The type of a Config field for each kind of setting (and for a default of None).
KIND_TYPES = {"str": "str", "int": "int", "float": "float", "bool": "bool",
              "list": "tuple[str, ...]", "size": "int", "hostport": "HostPort",
              "path": "Path"}


def test_config_fields_agree_with_the_settings_table() -> None:
    """Config repeats the table's names so that mypy knows each field's type: the two
    must name the same settings, in the same order, with matching types."""
    fields = [f for f in dataclasses.fields(config.Config)
              if f.name not in ("sections", "state_secret")]
    assert [f.name for f in fields] == [s.name for s in config.SETTINGS]
    for field, setting in zip(fields, config.SETTINGS, strict=True):
        expected = KIND_TYPES[setting.kind]
        if setting.default is None and setting.kind in ("hostport", "path"):
            expected += " | None"  # unset; a text setting unset is ""
        if setting.name == "trusted_proxy":
            expected = "tuple[Network, ...]"  # parsed into address ranges
        assert field.type == expected, setting.name


def test_every_limit_of_the_table_is_enforced() -> None:
    checked = 0
    for setting in config.SETTINGS:
        if setting.above is not None:
            bad: object = setting.above
        elif setting.minimum is not None:
            bad = setting.minimum - 1
        elif setting.choices:
            bad = "none-of-these"
        else:
            continue
        with pytest.raises(ConfigError) as exc:
            config.load({"domain": ["a.example"], setting.name: str(bad)}, environ={})
        assert exc.value.setting == setting.name and "must be" in exc.value.problem
        checked += 1
    assert checked >= 25


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


def test_every_boolean_has_a_no_form_that_wins_over_the_environment() -> None:
    from xmpp_post import cli

    parser = cli._parser()
    for setting in config.SETTINGS:
        if setting.kind != "bool":
            continue
        name = setting.flag[2:]
        on = parser.parse_args(["serve", "--domain", "a.example", f"--{name}"])
        off = parser.parse_args(["serve", "--domain", "a.example", f"--no-{name}"])
        assert (getattr(on, setting.name), getattr(off, setting.name)) == (True, False)
    flags = {"domain": ["a.example"], "direct_tls": False, "proxy_protocol": False}
    environ = {"XMPP_POST_DIRECT_TLS": "true", "XMPP_POST_PROXY_PROTOCOL": "1"}
    cfg = config.load(flags, environ=environ)
    assert (cfg.direct_tls, cfg.proxy_protocol) == (False, False)


def test_serve_help_groups_the_options_as_the_table_does() -> None:
    from xmpp_post import cli

    text = cli.parsers()["xmpp-post serve"].format_help()
    positions = [text.index(f"\n{group.title}:\n") for group in config.GROUPS]
    assert positions == sorted(positions)
    for group, start in zip(config.GROUPS, positions, strict=True):
        following = [p for p in positions if p > start]
        section = text[start:following[0] if following else len(text)]
        for setting in group.settings:
            assert setting.flag in section, (group.title, setting.name)
