"""A gateway's configuration: the flat settings (``settings.SETTINGS``) and the sections.

A setting gets its value from, in rising precedence: the TOML file, the environment
(``XMPP_POST_<NAME>``), the command line. Sections are TOML tables beside the flat keys
(``sections.SECTIONS``: accounts, tokens, webhooks, and those the fronts register, such
as ntfy's topics), read from the file only. Everything is validated here, before the
event loop exists; a bad value raises ``ConfigError`` naming the setting.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from xmpp_post import jids
from xmpp_post.config.convert import CONVERT, HostPort
from xmpp_post.config.sections import SECTIONS, Sections, check_sections, parse_sections
from xmpp_post.config.settings import (
    BY_NAME,
    ENV_PREFIX,
    GROUPS,
    SETTINGS,
    Group,
    Setting,
    check,
    example_toml,
)
from xmpp_post.errors import ConfigError

__all__ = ["BY_NAME", "ENV_PREFIX", "GROUPS", "SETTINGS", "Config", "Group", "HostPort",
           "Setting", "example_toml", "load", "load_setting"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
SYSTEMD_STATE_DIRECTORY = "STATE_DIRECTORY"  # set by systemd for StateDirectory=
MIN_STATE_KEY = 32  # bytes of state_secret_file: as long as an HMAC-SHA256 output
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Config:
    """Validated settings of one gateway.

    One field per setting of ``settings.SETTINGS``, in the table's order, then the
    sections. The fields are written out, not made from the table, so that mypy knows
    each one's type; ``tests/unit/test_config.py`` checks that the two agree (names, order,
    and each type against its setting's kind)."""

    # XMPP server
    domain: tuple[str, ...]
    xmpp_server: HostPort | None
    direct_tls: bool
    ca_file: Path | None
    insecure_skip_tls_verify: bool
    connect_timeout: float
    # HTTP API
    listen: HostPort
    base_path: str
    ntfy: bool
    ntfy_max_text: int
    web: bool
    admin: tuple[str, ...]  # token names and bare JIDs of served domains (_admins)
    # Messages
    ack_timeout: float
    receipt_timeout: float
    muc_nick: str
    max_recipients: int
    max_stanza_size: int
    bounce_wait: float
    encrypt: str
    # Files
    max_file_size: int
    upload_timeout: float
    spool_dir: Path | None
    # Sessions
    idle_timeout: float
    max_sessions: int
    max_concurrent_opens: int
    scram_cache: int
    # Requests and limits
    max_body: int
    request_timeout: float
    retry_after: int
    client_timeout: float
    max_header_size: int
    max_concurrent_requests: int
    max_uploads_per_address: int
    # Login throttle
    auth_failure_window: float
    auth_failure_limit: int
    auth_failure_limit_address: int
    auth_failure_limit_account: int
    # Idempotency
    idempotency_window: float
    idempotency_max_entries: int
    # State directory
    state_dir: Path | None
    # Templates
    template_dir: Path | None
    max_template_body: int
    # Several instances
    redis_url: str
    redis_timeout: float
    state_secret_file: Path | None
    trusted_proxy: tuple[Network, ...]  # parsed by _validated_instances
    proxy_protocol: bool
    drain_seconds: float
    # Logging and event loop
    log_level: str
    log_format: str
    uvloop: bool
    sections: Sections = field(default_factory=Sections)
    # The key of the shared state's digests, read from state_secret_file at load.
    state_secret: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def default_domain(self) -> str:
        return self.domain[0]


def load(flags: Mapping[str, Any], environ: Mapping[str, str] | None = None,
         config_file: Path | None = None) -> Config:
    """Merge file, environment and flags (in that order of precedence) and validate."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    if config_file is not None:
        raw, tables = _read_file(config_file)
    for setting in SETTINGS:
        if setting.env in environ:
            raw[setting.name] = environ[setting.env]
    for name, value in flags.items():
        if value is not None:
            raw[name] = value
    if raw.get("state_dir") is None and environ.get(SYSTEMD_STATE_DIRECTORY):
        # systemd's StateDirectory= (several are separated by colons: the first is ours)
        raw["state_dir"] = environ[SYSTEMD_STATE_DIRECTORY].split(":")[0]
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = raw.get(setting.name, setting.default)
        if value is None:
            if setting.name == "domain":
                raise ConfigError("domain", "at least one --domain is required")
            values[setting.name] = "" if setting.kind == "str" else None  # unset
            continue
        values[setting.name] = check(setting, CONVERT[setting.kind](setting, value))
    cfg = _validated(Config(**values, sections=parse_sections(tables, config_file)))
    check_sections(cfg.sections, cfg)
    return cfg


def load_setting(name: str, flag: Any, environ: Mapping[str, str] | None = None,
                 config_file: Path | None = None) -> Any:
    """One setting alone (for commands that need no more), with the same precedence:
    ``flag`` (None: not given), the environment, the file; None when unset."""
    setting = BY_NAME[name]
    environ = os.environ if environ is None else environ
    value = flag
    if value is None:
        value = environ.get(setting.env)
    if value is None and config_file is not None:
        value = _read_file(config_file)[0].get(name)
    if value is None:
        value = setting.default
    return None if value is None else CONVERT[setting.kind](setting, value)


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The flat settings and the section tables of a TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from exc
    out: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name in SECTIONS:
            tables[name] = value
        elif name not in BY_NAME:
            raise ConfigError(key, f"unknown setting in {path}")
        else:
            out[name] = value
    return out, tables


def _validated(cfg: Config) -> Config:
    if not cfg.domain:
        raise ConfigError("domain", "at least one --domain is required")
    normalized = []
    for domain in cfg.domain:
        try:
            normalized.append(jids.normalize_domain(domain))
        except jids.JidError:
            raise ConfigError("domain", f"{domain!r} is not a valid XMPP domain") from None
    cfg = replace(cfg, domain=tuple(dict.fromkeys(normalized)))
    if not cfg.base_path.startswith("/") or (cfg.base_path.endswith("/") and cfg.base_path != "/"):
        raise ConfigError("base_path", "must start with / and not end with /")
    if cfg.ca_file is not None and not cfg.ca_file.is_file():
        raise ConfigError("ca_file", f"{cfg.ca_file} is not a readable file")
    if cfg.spool_dir is not None and not cfg.spool_dir.is_dir():
        raise ConfigError("spool_dir", f"{cfg.spool_dir} is not a folder")
    # Each setting's own limits were checked by settings.check as it was read.
    if cfg.bounce_wait >= cfg.request_timeout:
        raise ConfigError("bounce_wait", "must be 0 or more seconds, and less than "
                                         "request_timeout")
    if cfg.muc_nick:
        try:
            cfg = replace(cfg, muc_nick=jids.resourcepart(cfg.muc_nick))
        except jids.JidError as exc:
            raise ConfigError("muc_nick", f"{cfg.muc_nick!r} is not a valid nickname: "
                                          f"{exc}") from None
    return _validated_instances(replace(cfg, admin=_admins(cfg)))


def _admins(cfg: Config) -> tuple[str, ...]:
    """``admin``: bare JIDs of served domains (normalized) and names of [tokens]."""
    tokens = cfg.sections.get("tokens")
    names = set(tokens.by_name) if tokens is not None else set()
    found: list[str] = []
    for entry in cfg.admin or ():  # None when unset
        if "@" not in entry:
            if entry not in names:
                raise ConfigError("admin", f"{entry!r} is neither a JID (user@domain) nor "
                                           "the name of a token in [tokens]")
            found.append(entry)
            continue
        try:
            jid = jids.account(entry, cfg.default_domain)
        except jids.JidError:
            raise ConfigError("admin", f"{entry!r} is not a valid JID") from None
        if jids.domain_of(jid) not in cfg.domain:
            raise ConfigError("admin", f"{jid} is not on a domain this gateway serves")
        found.append(jid)
    return tuple(dict.fromkeys(found))


def _validated_instances(cfg: Config) -> Config:
    """The settings for several instances: shared state, proxies, draining."""
    if cfg.redis_url and not cfg.redis_url.startswith(REDIS_SCHEMES):
        raise ConfigError("redis_url", "must start with redis://, rediss:// or unix://")
    secret = None
    if cfg.state_secret_file is not None:
        from xmpp_post.config.accounts import read_secret  # the rules of every secret file

        secret = read_secret(cfg.state_secret_file, "state_secret_file").encode()
        if len(secret) < MIN_STATE_KEY:
            raise ConfigError("state_secret_file", f"{cfg.state_secret_file} holds "
                              f"{len(secret)} bytes; at least {MIN_STATE_KEY} are needed "
                              "(e.g. openssl rand -base64 48 > FILE)")
    elif cfg.redis_url:
        raise ConfigError("state_secret_file", "is required with redis_url: every instance "
                                               "needs the same key for the shared digests")
    networks: list[Network] = []
    for text in cfg.trusted_proxy or ():
        try:
            networks.append(ipaddress.ip_network(str(text).strip(), strict=False))
        except ValueError:
            raise ConfigError("trusted_proxy", f"{text!r} is not an address range "
                                               "such as 10.0.0.0/8 or ::1/128") from None
    if cfg.proxy_protocol and not networks:
        raise ConfigError("trusted_proxy", "is required with proxy_protocol: the address "
                          "range of the proxy that sends the PROXY header (e.g. "
                          "10.0.0.2/32); whoever could send one would choose the client "
                          "address the throttle counts by")
    return replace(cfg, state_secret=secret, trusted_proxy=tuple(networks))


# The sections of this package register themselves on import.
from xmpp_post.config import accounts, bots, tokens_webhooks  # noqa: E402, F401
