"""``[bots.NAME]``: an account whose incoming messages are POSTed to a webhook, whose
answers are the replies (``xmpp_post.bots``)::

    [bots.oncall]
    account = "alerts@example.org"            # one of [accounts]
    url = "https://hooks.example.org/xmpp"    # each incoming message is POSTed here
    secret_file = "oncall.whsec"              # whsec_<base64>: Standard Webhooks signing
    rooms = ["ops@conference.example.org"]    # optional: joined with nick
    nick = "alerts"                           # default: the account's localpart
    mentions_only = true                      # in rooms: only messages naming the nick
    alertmanager_url = "http://alertmanager:9093"   # optional: the built-in alert actions
    allow = ["oncall@example.org"]            # optional: who may use them
    retry_for = "1h"                          # how long a delivery is retried (s, m, h)

One bot per account. Bots keep their waiting deliveries in the state directory, so the
gateway refuses to start them without one (``state.lasting.require_lasting``).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xmpp_post import jids
from xmpp_post.config.accounts import read_secret, require_accounts, resolve
from xmpp_post.config.sections import Section, register
from xmpp_post.config.tokens_webhooks import webhook_key
from xmpp_post.errors import ConfigError

if TYPE_CHECKING:
    from xmpp_post.config import Config

NAME = "bots"
DEFAULT_RETRY_FOR = 3600.0
MAX_RETRY_FOR = 7 * 24 * 3600.0
MAX_ROOMS = 32
MAX_ALLOW = 200
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DURATION = re.compile(r"\s*(\d{1,7})\s*(s|m|h|d)?\s*")
_UNIT = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_KEYS = ("account", "url", "secret_file", "rooms", "nick", "mentions_only",
         "alertmanager_url", "allow", "retry_for")


@dataclass(frozen=True)
class Bot:
    """One configured bot; ``secret`` is the signing key (the whsec_ base64 decoded)."""

    name: str
    account: str
    url: str
    secret: bytes = field(repr=False)
    rooms: tuple[str, ...] = ()
    nick: str = ""
    mentions_only: bool = True
    alertmanager_url: str | None = None
    allow: frozenset[str] | None = None
    retry_for: float = DEFAULT_RETRY_FOR


def redacted_url(url: str) -> str:
    """``url`` without what may hold credentials (user info, query, fragment), for logs."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    hidden = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{hidden}"


def _http_url(where: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(where, "must be an http:// or https:// URL")
    try:
        parts = urllib.parse.urlsplit(value.strip())
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        raise ConfigError(where, "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(where, "must be an http:// or https:// URL with a host")
    return value.strip()


def parse_duration(where: str, value: object) -> float:
    """Seconds, as a number or text such as ``90s``, ``30m``, ``1h``, ``2d``."""
    if isinstance(value, bool):
        raise ConfigError(where, "must be a duration such as 3600, \"30m\" or \"1h\"")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        found = _DURATION.fullmatch(value) if isinstance(value, str) else None
        if found is None:
            raise ConfigError(where, "must be a duration such as 3600, \"30m\" or \"1h\"")
        seconds = float(int(found.group(1)) * _UNIT[found.group(2)])
    if not 0 < seconds <= MAX_RETRY_FOR:
        raise ConfigError(where, f"must be more than 0 and at most {MAX_RETRY_FOR:g} s")
    return seconds


def _jid_list(where: str, value: object, limit: int) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > limit:
        raise ConfigError(where, f"must be an array of at most {limit} bare JIDs")
    out: list[str] = []
    for item in value:
        try:
            out.append(jids.account(item if isinstance(item, str) else "", ""))
        except jids.JidError as exc:
            raise ConfigError(where, f"{item!r} is not a bare JID ({exc})") from None
    return tuple(dict.fromkeys(out))


def _bot(name: str, entry: Mapping[str, Any], config_file: Path | None) -> Bot:
    where = f"{NAME}.{name}"
    for secret in ("secret", "password"):
        if secret in entry:
            raise ConfigError(where, f"a {secret} written in the configuration is refused; "
                              "put the signing secret in a file (secret_file)")
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        raise ConfigError(where, f"unknown key {unknown[0]!r}; keys are {', '.join(_KEYS)}")
    for required in ("account", "url", "secret_file"):
        if required not in entry:
            raise ConfigError(where, f"{required} is required")
    try:
        account = jids.account(entry["account"] if isinstance(entry["account"], str) else "",
                               "")
    except jids.JidError as exc:
        raise ConfigError(f"{where}.account", f"not a bare JID user@domain ({exc})") from None
    path = resolve(entry["secret_file"], config_file, f"{where}.secret_file")
    key = webhook_key(where, "standard-webhooks", read_secret(path, f"{where}.secret_file"))
    nick_text = entry.get("nick", jids.local_of(account))
    try:
        nick = jids.resourcepart(nick_text if isinstance(nick_text, str) else "")
    except jids.JidError as exc:
        raise ConfigError(f"{where}.nick", f"{nick_text!r} is not a valid nickname "
                          f"({exc})") from None
    mentions_only = entry.get("mentions_only", True)
    if not isinstance(mentions_only, bool):
        raise ConfigError(f"{where}.mentions_only", "must be true or false")
    alertmanager = entry.get("alertmanager_url")
    allow = entry.get("allow")
    return Bot(
        name=name, account=account, url=_http_url(f"{where}.url", entry["url"]),
        secret=key, rooms=_jid_list(f"{where}.rooms", entry.get("rooms", []), MAX_ROOMS),
        nick=nick, mentions_only=mentions_only,
        alertmanager_url=(None if alertmanager is None
                          else _http_url(f"{where}.alertmanager_url", alertmanager)
                          .rstrip("/")),
        allow=None if allow is None else frozenset(_jid_list(f"{where}.allow", allow,
                                                             MAX_ALLOW)),
        retry_for=parse_duration(f"{where}.retry_for",
                                 entry.get("retry_for", DEFAULT_RETRY_FOR)))


def parse(table: Mapping[str, Any], config_file: Path | None) -> dict[str, Bot]:
    bots: dict[str, Bot] = {}
    accounts: dict[str, str] = {}
    for raw_name, raw in table.items():
        if not isinstance(raw_name, str) or not _NAME.fullmatch(raw_name):
            raise ConfigError(f"{NAME}.{raw_name}", "a name is 1 to 64 letters, digits, - "
                                                    "and _")
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{NAME}.{raw_name}", "must be a table")
        bot = _bot(raw_name, raw, config_file)
        other = accounts.setdefault(bot.account, bot.name)
        if other != bot.name:
            raise ConfigError(f"{NAME}.{bot.name}.account", f"{bot.account} is the account "
                              f"of bots.{other} already: one bot per account")
        bots[bot.name] = bot
    return bots


def check(bots: Mapping[str, Bot], config: Config) -> None:
    """Every bot's account is one of [accounts]."""
    require_accounts(NAME, {name: bot.account for name, bot in bots.items()}, config)


SECTION = register(Section(NAME, "bots: accounts whose incoming messages are POSTed to a "
                           "webhook, its answers sent as replies", parse, check))
