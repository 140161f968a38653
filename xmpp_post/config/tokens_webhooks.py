"""``[tokens.NAME]`` and ``[webhooks.NAME]``: sending without an account's password.

A token lets a caller send as one of the ``[accounts]`` with ``Authorization: Bearer``;
the configuration keeps only its SHA-256 (``xmpp-post token create`` prints both)::

    [tokens.ci]
    sha256 = "9f2c…"                         # of the token, 64 hex digits
    account = "alerts@example.org"           # one of [accounts]
    to = ["ops@conference.example.org"]      # optional: only these recipients
    template = "github"                      # optional: always rendered by it
    rate = "30/minute"                       # optional: messages; more is 429

A signed webhook serves ``POST /hooks/NAME`` for a tool that proves its deliveries with
a shared secret instead of credentials::

    [webhooks.github]
    account = "alerts@example.org"
    to = ["ops@conference.example.org"]
    verify = "github"             # github, gitea, gitlab, grafana, standard-webhooks
    secret_file = "github.secret"  # or an array of files while rotating the secret
    template = "github"           # default: the template named like ``verify``

A webhook URL (``verify = "url"``) serves ``POST /hooks/xph_…`` for a tool that can only
post to a URL it was given, as to Slack's and Mattermost's: the URL is the secret, and
the configuration keeps only its SHA-256 (``xmpp-post webhook create`` prints both)::

    [webhooks.uptime]
    verify = "url"
    sha256 = "5be1…"              # of xph_…, 64 hex digits
    account = "alerts@example.org"
    to = ["ops@conference.example.org"]
    template = "slack"            # the default for verify = "url"

Names are 1 to 64 letters, digits, ``-`` and ``_``; ``xph_…`` names are the URLs'. Secret
files follow the rules of ``accounts.read_secret``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xmpp_post import jids
from xmpp_post.config.accounts import parse_encrypt, read_secret, require_accounts, resolve
from xmpp_post.config.sections import Section, register
from xmpp_post.errors import ConfigError

if TYPE_CHECKING:
    from xmpp_post.config import Config

TOKEN_PREFIX = "xpt_"
URL_PREFIX = "xph_"  # a webhook URL's secret: POST /hooks/xph_…
VERIFY_SCHEMES = ("github", "gitea", "gitlab", "grafana", "standard-webhooks", "url")
DEFAULT_MAX_AGE = 300  # seconds a timed signature (grafana, standard-webhooks) stays valid
TIMED_SCHEMES = ("grafana", "standard-webhooks")
GRAFANA_TIMESTAMP = "X-Grafana-Alerting-Signature-Timestamp"
MAX_RECIPIENTS = 50
MAX_SECRET_FILES = 4
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_RATE = re.compile(r"\s*(\d{1,9})\s*/\s*(second|sec|s|minute|min|m|hour|h)\s*")
_PER = {"second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600,
        "h": 3600}
_TOKEN_KEYS = ("sha256", "account", "to", "template", "rate", "encrypt")
_HOOK_KEYS = ("account", "to", "template", "verify", "secret_file", "timestamp_header",
              "max_age", "encrypt")
_URL_HOOK_KEYS = ("account", "to", "template", "verify", "sha256", "encrypt")


@dataclass(frozen=True)
class Rate:
    """At most ``count`` messages (one per recipient) per ``seconds``."""

    count: int
    seconds: int

    def __str__(self) -> str:
        unit = {1: "second", 60: "minute", 3600: "hour"}[self.seconds]
        return f"{self.count}/{unit}"


@dataclass(frozen=True)
class Token:
    name: str
    digest: bytes = field(repr=False)  # SHA-256 of the token
    account: str
    to: frozenset[str] | None = None
    template: str | None = None
    rate: Rate | None = None
    encrypt: str = "none"  # its messages' least encryption (a request cannot lower it)


@dataclass(frozen=True)
class Tokens:
    """The configured tokens, by name and by the SHA-256 of the token."""

    by_name: Mapping[str, Token] = field(default_factory=dict)
    by_digest: Mapping[bytes, Token] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Webhook:
    name: str
    account: str
    to: tuple[str, ...]
    verify: str
    secrets: tuple[bytes, ...] = field(repr=False)  # any of them verifies (rotation)
    template: str | None = None
    timestamp_header: str = GRAFANA_TIMESTAMP
    max_age: int = DEFAULT_MAX_AGE
    digest: bytes | None = field(default=None, repr=False)  # verify = "url": of its secret
    encrypt: str = "none"  # its messages' least encryption (a request cannot lower it)


@dataclass(frozen=True)
class Webhooks(Mapping[str, Webhook]):
    """The configured webhooks by name; ``by_digest``: the webhook URLs (``verify =
    "url"``) by the SHA-256 of their secret."""

    by_name: Mapping[str, Webhook] = field(default_factory=dict)
    by_digest: Mapping[bytes, Webhook] = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> Webhook:
        return self.by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_name)

    def __len__(self) -> int:
        return len(self.by_name)


def _name(section: str, name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{section}.{name}", "a name is 1 to 64 letters, digits, - and _")
    return name


def _sha256(where: str, value: object, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ConfigError(f"{where}.sha256", f"must be the {what}'s SHA-256 in 64 hex digits "
                          f"(xmpp-post {what} create prints it)")
    return bytes.fromhex(value)


def _entry(where: str, entry: object, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(entry, Mapping):
        raise ConfigError(where, "must be a table")
    for secret in ("secret", "password", "token"):
        if secret in entry:
            raise ConfigError(where, f"a {secret} written in the configuration is refused; "
                              "see docs/tokens.md (tokens are kept as their sha256, secrets "
                              "in a secret_file)")
    unknown = sorted(set(entry) - set(keys))
    if unknown:
        raise ConfigError(where, f"unknown key {unknown[0]!r}; keys are {', '.join(keys)}")
    return entry


def _text(where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(where, "must be a non-empty string")
    return value.strip()


def _account(where: str, value: object) -> str:
    try:
        return jids.account(_text(f"{where}.account", value), "")
    except jids.JidError as exc:
        raise ConfigError(f"{where}.account", f"not a bare JID user@domain ({exc})") from None


def _recipients(where: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}.to", "must be a non-empty array of JIDs")
    if len(value) > MAX_RECIPIENTS:
        raise ConfigError(f"{where}.to", f"at most {MAX_RECIPIENTS} JIDs")
    out: list[str] = []
    for item in value:
        try:
            out.append(jids.account(_text(f"{where}.to", item), ""))
        except jids.JidError as exc:
            raise ConfigError(f"{where}.to", f"{item!r} is not a bare JID user@domain "
                              f"({exc})") from None
    return tuple(dict.fromkeys(out))


def _template(where: str, value: object) -> str:
    text = _text(f"{where}.template", value)
    if not _NAME.fullmatch(text):
        raise ConfigError(f"{where}.template", "a template name is letters, digits, - and _")
    return text


def parse_rate(text: object, where: str = "rate") -> Rate:
    """``N/second``, ``N/minute`` or ``N/hour`` (also ``N/s``, ``N/min``, ``N/h``)."""
    found = _RATE.fullmatch(text) if isinstance(text, str) else None
    if found is None or int(found.group(1)) < 1:
        raise ConfigError(where, "must be N/second, N/minute or N/hour with N at least 1")
    return Rate(int(found.group(1)), _PER[found.group(2)])


def parse_tokens(table: Mapping[str, Any], _path: Path | None) -> Tokens:
    by_name: dict[str, Token] = {}
    by_digest: dict[bytes, Token] = {}
    for raw_name, raw in table.items():
        name = _name("tokens", raw_name)
        where = f"tokens.{name}"
        entry = _entry(where, raw, _TOKEN_KEYS)
        digest = _sha256(where, entry.get("sha256"), "token")
        if "account" not in entry:
            raise ConfigError(where, "account is required")
        token = Token(
            name=name, digest=digest, account=_account(where, entry["account"]),
            to=frozenset(_recipients(where, entry["to"])) if "to" in entry else None,
            template=_template(where, entry["template"]) if "template" in entry else None,
            rate=parse_rate(entry["rate"], f"{where}.rate") if "rate" in entry else None,
            encrypt=parse_encrypt(where, entry.get("encrypt", "none")))
        if token.digest in by_digest:
            raise ConfigError(f"{where}.sha256", "the same token as tokens."
                              f"{by_digest[token.digest].name}")
        by_name[name] = by_digest[token.digest] = token
    return Tokens(by_name, by_digest)


def _secret_paths(where: str, value: object, config_file: Path | None) -> list[Path]:
    items = value if isinstance(value, list) else [value]
    if not items or len(items) > MAX_SECRET_FILES:
        raise ConfigError(f"{where}.secret_file", "must be a path, or an array of 1 to "
                          f"{MAX_SECRET_FILES} paths while rotating the secret")
    return [resolve(item, config_file, f"{where}.secret_file") for item in items]


def webhook_key(where: str, verify: str, secret: str) -> bytes:
    """The key a signing scheme uses: a Standard Webhooks secret (``whsec_<base64>``)
    decoded, any other secret as its UTF-8 bytes; ``where`` names the setting in errors."""
    if verify != "standard-webhooks":
        return secret.encode("utf-8")
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 16:
        raise ConfigError(f"{where}.secret_file", "a standard-webhooks secret is whsec_ "
                          "followed by the base64 of at least 16 random bytes")
    return key


def _url_hook(name: str, where: str, raw: object) -> Webhook:
    """A webhook URL: its secret's digest instead of secret files; template slack."""
    entry = _entry(where, raw, _URL_HOOK_KEYS)
    for key in ("account", "to", "sha256"):
        if key not in entry:
            raise ConfigError(where, f"{key} is required with verify = \"url\"")
    return Webhook(name=name, account=_account(where, entry["account"]),
                   to=_recipients(where, entry["to"]), verify="url", secrets=(),
                   template=_template(where, entry.get("template", "slack")),
                   digest=_sha256(where, entry["sha256"], "webhook"),
                   encrypt=parse_encrypt(where, entry.get("encrypt", "none")))


def parse_webhooks(table: Mapping[str, Any], config_file: Path | None) -> Webhooks:
    hooks: dict[str, Webhook] = {}
    by_digest: dict[bytes, Webhook] = {}
    for raw_name, raw in table.items():
        name = _name("webhooks", raw_name)
        where = f"webhooks.{name}"
        if name.startswith(URL_PREFIX):
            raise ConfigError(where, f"a name starting {URL_PREFIX} would be taken for a "
                              "webhook URL's secret")
        if isinstance(raw, Mapping) and raw.get("verify") == "url":
            hook = _url_hook(name, where, raw)
            digest = hook.digest or b""
            if digest in by_digest:
                raise ConfigError(f"{where}.sha256", "the same URL as webhooks."
                                  f"{by_digest[digest].name}")
            hooks[name] = by_digest[digest] = hook
            continue
        entry = _entry(where, raw, _HOOK_KEYS)
        for key in ("account", "to", "verify", "secret_file"):
            if key not in entry:
                raise ConfigError(where, f"{key} is required")
        verify = entry["verify"]
        if verify not in VERIFY_SCHEMES:
            raise ConfigError(f"{where}.verify", f"must be one of {', '.join(VERIFY_SCHEMES)}")
        keys = tuple(webhook_key(where, verify, read_secret(path, f"{where}.secret_file"))
                     for path in _secret_paths(where, entry["secret_file"], config_file))
        max_age = entry.get("max_age", DEFAULT_MAX_AGE)
        if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 1:
            raise ConfigError(f"{where}.max_age", "must be a number of seconds, at least 1")
        default_template = None if verify == "standard-webhooks" else verify
        if default_template is None and "template" not in entry:
            raise ConfigError(f"{where}.template", "is required with verify = "
                              "\"standard-webhooks\" (no built-in template knows the payload)")
        hooks[name] = Webhook(
            name=name, account=_account(where, entry["account"]),
            to=_recipients(where, entry["to"]), verify=verify, secrets=keys,
            template=(_template(where, entry["template"]) if "template" in entry
                      else default_template),
            timestamp_header=_text(f"{where}.timestamp_header",
                                   entry.get("timestamp_header", GRAFANA_TIMESTAMP)),
            max_age=max_age, encrypt=parse_encrypt(where, entry.get("encrypt", "none")))
    return Webhooks(hooks, by_digest)


def check_tokens(tokens: Tokens, config: Config) -> None:
    require_accounts("tokens", {n: t.account for n, t in tokens.by_name.items()}, config)


def check_webhooks(hooks: Mapping[str, Webhook], config: Config) -> None:
    require_accounts("webhooks", {n: h.account for n, h in hooks.items()}, config)
    # No signature covers the webhook's name: a delivery to one webhook would pass as a
    # delivery to another that knows the same secret (its recipients, its template).
    owners: dict[bytes, str] = {}
    for name, hook in hooks.items():
        for secret in hook.secrets:
            other = owners.setdefault(secret, name)
            if other != name:
                raise ConfigError(f"webhooks.{name}.secret_file", f"holds a secret of "
                                  f"webhooks.{other}: a delivery to one could be replayed "
                                  "to the other; give each webhook its own secret")
    for name, hook in hooks.items():
        # A timed delivery is a duplicate while its signature is fresh: its id must be
        # remembered (idempotency_window) that long, or a late replay is sent again.
        if hook.verify in TIMED_SCHEMES and hook.max_age > config.idempotency_window:
            raise ConfigError(f"webhooks.{name}.max_age", f"{hook.max_age} s is longer "
                              f"than idempotency_window ({config.idempotency_window:g} s): "
                              "a replay after its id is forgotten would be sent again")


TOKENS = register(Section("tokens", "API tokens: send as an account with a Bearer token",
                          parse_tokens, check_tokens))
WEBHOOKS = register(Section("webhooks", "signed webhooks served at POST /hooks/NAME",
                            parse_webhooks, check_webhooks))
