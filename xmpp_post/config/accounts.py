"""``[accounts."alerts@example.org"]``: the accounts the gateway itself may send as.

A token or a signed webhook sends as one of these accounts, so the gateway holds its
password. The password is never written in the configuration: it comes from a file only
its owner can read (``password_file``: systemd's ``LoadCredential=``, Docker and
Kubernetes secrets) or from an environment variable (``password_env``)::

    [accounts."alerts@example.org"]
    password_file = "/run/credentials/xmpp-post.service/alerts"   # mode 0400 or 0600

A file that group or others can read is refused at start (and at reload), as is a
password written inline. One trailing newline (``\\n`` or ``\\r\\n``) is not part of the
password; anything else is, spaces included. A relative path is relative to the
configuration file's folder. ``read_secret`` applies the same rules to a webhook's
``secret_file``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xmpp_post import jids
from xmpp_post.config.sections import Section, register
from xmpp_post.errors import ConfigError

if TYPE_CHECKING:
    from xmpp_post.config import Config

NAME = "accounts"
MAX_SECRET = 4096  # bytes; a password or a webhook secret is never anywhere near this
_KEYS = ("password_file", "password_env", "encrypt")
ENCRYPT_MODES = ("none", "omemo")


@dataclass(frozen=True)
class Account:
    """An account the gateway sends as, with the password that logs it in."""

    jid: str
    password: str = field(repr=False)
    source: str = ""  # where the password came from ("file /path" or "env NAME"), for logs
    encrypt: str = "none"  # the default of its messages (``encrypt = "omemo"``)


def parse_encrypt(where: str, value: object) -> str:
    """A table's ``encrypt``: "none" or "omemo"."""
    if value not in ENCRYPT_MODES:
        raise ConfigError(f"{where}.encrypt", f"must be {' or '.join(map(repr, ENCRYPT_MODES))}")
    return str(value)


def read_secret(path: Path, setting: str) -> str:
    """The secret in ``path``: refused (``ConfigError(setting, …)``) when group or others
    may read the file, when it is not a readable regular file, empty, or not UTF-8."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the start
    except OSError as exc:
        raise ConfigError(setting, f"cannot read {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(setting, f"{path} is not a regular file")
        if info.st_mode & (stat.S_IRGRP | stat.S_IROTH):
            raise ConfigError(setting, f"{path} can be read by group or others (mode "
                              f"{stat.S_IMODE(info.st_mode):04o}); make it readable by its "
                              "owner only (chmod 600)")
        data = os.read(fd, MAX_SECRET + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET:
        raise ConfigError(setting, f"{path} is longer than {MAX_SECRET} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(setting, f"{path} is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
    if not text:
        raise ConfigError(setting, f"{path} is empty")
    return text


def resolve(path_text: object, config_file: Path | None, setting: str) -> Path:
    """A path from the configuration, relative to the configuration file's folder."""
    if not isinstance(path_text, str) or not path_text.strip():
        raise ConfigError(setting, "must be a file path")
    path = Path(path_text).expanduser()
    if not path.is_absolute() and config_file is not None:
        path = config_file.parent / path
    return path


def _account(jid_text: str, entry: object, config_file: Path | None) -> Account:
    where = f'{NAME}."{jid_text}"'
    if not isinstance(entry, Mapping):
        raise ConfigError(where, "must be a table with password_file or password_env")
    if "password" in entry:
        raise ConfigError(where, "a password written in the configuration is refused; "
                                 "put it in a file readable by the gateway only "
                                 "(password_file) or in the environment (password_env)")
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        raise ConfigError(where, f"unknown key {unknown[0]!r}; keys are {', '.join(_KEYS)}")
    try:
        jid = jids.account(jid_text, "")
    except jids.JidError as exc:
        raise ConfigError(where, f"not a bare JID user@domain ({exc})") from None
    encrypt = parse_encrypt(where, entry.get("encrypt", "none"))
    given = [key for key in _KEYS[:2] if key in entry]
    if len(given) != 1:
        raise ConfigError(where, "give exactly one of password_file and password_env")
    if given[0] == "password_file":
        path = resolve(entry["password_file"], config_file, f"{where}.password_file")
        return Account(jid, read_secret(path, f"{where}.password_file"), f"file {path}",
                       encrypt)
    name = entry["password_env"]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.password_env", "must be the name of a variable")
    value = os.environ.get(name, "")
    if not value:
        raise ConfigError(f"{where}.password_env", f"the variable {name} is unset or empty")
    return Account(jid, value, f"env {name}", encrypt)


def parse(table: Mapping[str, Any], config_file: Path | None) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for jid_text, entry in table.items():
        account = _account(jid_text, entry, config_file)
        if account.jid in accounts:
            raise ConfigError(f'{NAME}."{jid_text}"', f"{account.jid} is listed twice")
        accounts[account.jid] = account
    return accounts


def check(accounts: Mapping[str, Account], config: Config) -> None:
    """Every account is on a served domain."""
    domains = config.domain
    for jid in accounts:
        if jids.domain_of(jid) not in domains:
            raise ConfigError(f'{NAME}."{jid}"', f"{jids.domain_of(jid)} is not one of the "
                              f"served domains ({', '.join(domains)})")


def require_accounts(kind: str, users: Mapping[str, str], config: Config) -> None:
    """ConfigError unless each ``users`` entry (name -> account JID) of the section
    ``kind`` (tokens, webhooks, bots) is one of [accounts]."""
    accounts = config.sections.get(NAME) or {}
    for name, account in users.items():
        if account not in accounts:
            raise ConfigError(f"{kind}.{name}.account", f"{account} is not one of "
                              f'[accounts]: add [accounts."{account}"] with its '
                              "password_file")


SECTION = register(Section(NAME, "accounts the gateway sends as for tokens and webhooks",
                           parse, check))
