"""The flat settings table: every setting's name, kind, default and help, written once.

The table drives the command-line options, the environment variables
(``XMPP_POST_<NAME>``), the TOML keys, ``--help``, the example configuration and the
README's table (a test checks that every setting is documented there). The converters
turn a raw value (text from a flag or the environment, or a TOML value) into the
setting's type, raising ``ConfigError`` naming the setting.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xmpp_post.errors import ConfigError

ENV_PREFIX = "XMPP_POST_"


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # str, int, float, bool, list, size, hostport, path
    default: Any
    help: str
    metavar: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("listen", "hostport", "127.0.0.1:5280",
            "Address and port the HTTP API listens on.", "HOST:PORT"),
    Setting("domain", "list", None,
            "XMPP domain whose users may send through the gateway; repeat for several "
            "(required). Senders of any other domain are refused before any connection.",
            "DOMAIN"),
    Setting("xmpp_server", "hostport", None,
            "XMPP server to connect to. Default: the DNS SRV record "
            "_xmpp-client._tcp.<domain>, then the domain itself on port 5222.",
            "HOST[:PORT]"),
    Setting("direct_tls", "bool", False,
            "Connect with direct TLS (XEP-0368, usually port 5223) instead of STARTTLS."),
    Setting("ca_file", "path", None,
            "PEM file of trust anchors for the XMPP server's certificate. "
            "Default: the system's trust store.", "PATH"),
    Setting("insecure_skip_tls_verify", "bool", False,
            "Lab use only: accept any server certificate. Logged as a warning at start "
            "and on every connection."),
    Setting("base_path", "str", "/msg", "URL path under which messages are posted.", "PATH"),
    Setting("ntfy", "bool", True,
            "Serve ntfy's publish API at the root of the listener (POST /<topic>, JSON at "
            "/, GET /<topic>/publish), so tools that notify ntfy can notify XMPP. Needs a "
            "base_path other than /."),
    Setting("ntfy_max_text", "size", 4096,
            "Longest ntfy message sent as text, in bytes (ntfy's own limit is 4096); ntfy "
            "clients send longer ones as file attachments, which are refused 413.", "BYTES"),
    Setting("max_body", "size", 64 * 1024,
            "Largest request body accepted, in bytes (suffixes KiB and MiB allowed).", "BYTES"),
    Setting("connect_timeout", "float", 10.0,
            "Seconds allowed for connecting and logging in to the XMPP server.", "SECONDS"),
    Setting("ack_timeout", "float", 10.0,
            "Seconds to wait for the XMPP server to acknowledge a message before "
            "answering 504.", "SECONDS"),
    Setting("idle_timeout", "float", 300.0,
            "Seconds an unused XMPP session stays open before it is closed.", "SECONDS"),
    Setting("max_sessions", "int", 1000,
            "Most XMPP sessions open at once; the least recently used idle one closes "
            "first.", "N"),
    Setting("receipt_timeout", "float", 10.0,
            "Seconds to wait for a delivery receipt (XEP-0184) when a request asks for one "
            "with receipt=true; the response then says received or timeout.", "SECONDS"),
    Setting("muc_nick", "str", None,
            "Nickname the gateway uses in group chats when a request gives no nick. "
            "Default: the sender's localpart.", "NICK"),
    Setting("max_recipients", "int", 50,
            "Most recipients one request may name; more is answered 400.", "N"),
    Setting("max_stanza_size", "size", 256 * 1024,
            "Largest stanza the XMPP server accepts from a client, in bytes (Prosody's "
            "c2s_stanza_size_limit, ejabberd's max_stanza_size). A message whose stanza "
            "would be larger once its text is escaped as XML is answered 413 "
            "stanza_too_large before it is sent.", "BYTES"),
    Setting("bounce_wait", "float", 0.0,
            "Seconds to wait after the server's acknowledgement for a refusal of a message "
            "to a recipient on another domain (its server may refuse it later); 0 answers "
            "at once. Later refusals are counted in /metrics and logged.", "SECONDS"),
    Setting("uvloop", "bool", True,
            "Run on uvloop, installed with xmpp-post on Linux and macOS: less CPU per "
            "message and per idle session than asyncio's own event loop, which runs "
            "instead where uvloop is not installed, or with --no-uvloop."),
    Setting("log_level", "str", "info",
            "Logging level: debug, info, warning or error. Message bodies and "
            "credentials are never logged.", "LEVEL"),
    Setting("log_format", "str", "text",
            "Log line format: text (event key=value ...) or json (one object per line).",
            "FORMAT"),
    # Reliability and limits under abuse (docs/reliability.md).
    Setting("request_timeout", "float", 15.0,
            "Most seconds a request may take from its arrival to its answer, including "
            "waiting for a session to open; beyond it the answer is 503 or 504.", "SECONDS"),
    Setting("retry_after", "int", 5,
            "Seconds suggested in Retry-After when the XMPP server or the gateway is "
            "unavailable.", "SECONDS"),
    Setting("client_timeout", "float", 10.0,
            "Seconds a client has to send a complete request head, and again its body; "
            "a slower client is cut off (408 for a slow body).", "SECONDS"),
    Setting("max_header_size", "size", 8190,
            "Longest request line or header field accepted, in bytes.", "BYTES"),
    Setting("max_concurrent_requests", "int", 256,
            "Most message requests handled at once; more are answered 503 busy.", "N"),
    Setting("max_uploads_per_address", "int", 32,
            "Most requests from one client address whose body is still arriving; more are "
            "answered 429 too_many_uploads. A request holds a delivery slot only once its "
            "body has arrived.", "N"),
    Setting("max_concurrent_opens", "int", 16,
            "Most XMPP sessions being opened (connect and log in) at once; more wait.", "N"),
    Setting("auth_failure_window", "float", 60.0,
            "Seconds over which failed logins are counted for rate limiting.", "SECONDS"),
    Setting("auth_failure_limit", "int", 5,
            "Failed logins for one account from one client address within the window "
            "before that pair is answered 429.", "N"),
    Setting("auth_failure_limit_address", "int", 20,
            "Failed logins from one client address (any account) within the window "
            "before that address is answered 429.", "N"),
    Setting("auth_failure_limit_account", "int", 10,
            "Failed logins for one account (any address) within the window before the "
            "account is answered 429, except for a password the server has already "
            "accepted for it.", "N"),
    Setting("idempotency_window", "float", 600.0,
            "Seconds a result is kept for retries that repeat its Idempotency-Key.", "SECONDS"),
    Setting("idempotency_max_entries", "int", 10000,
            "Most Idempotency-Key results kept; the oldest are forgotten first.", "N"),
    # Webhook templates (?template=NAME, token templates, /hooks/NAME).
    Setting("template_dir", "path", None,
            "Folder of your own message templates (NAME.j2), beside the built-in ones; one "
            "named like a built-in replaces it. Loaded at start (a template that does not "
            "compile stops the gateway) and re-read on SIGHUP.", "PATH"),
    Setting("max_template_body", "size", 1024 * 1024,
            "Largest request body accepted when a template renders it (a tool's own "
            "payload, such as a push with many commits), in bytes; other requests keep "
            "max_body.", "BYTES"),
    # Several instances behind a load balancer.
    Setting("redis_url", "str", None,
            "Keep the login throttle and the Idempotency-Key answers in Redis "
            "(redis://, rediss:// or unix:// URL), shared by every instance. Default: in "
            "this process. Needs state_secret_file.", "URL"),
    Setting("redis_timeout", "float", 2.0,
            "Seconds a Redis command may take before the request is answered 503 "
            "state_unavailable.", "SECONDS"),
    Setting("state_secret_file", "path", None,
            "File holding the key (at least 32 bytes) of the digests kept in the shared "
            "state; the same file on every instance; readable by the owner only.", "PATH"),
    Setting("trusted_proxy", "list", None,
            "Address range (CIDR) of a proxy whose X-Forwarded-For is believed (and, with "
            "proxy_protocol, who may send the PROXY header); repeat for several. The "
            "client is the right-most address not in a trusted range.", "CIDR"),
    Setting("proxy_protocol", "bool", False,
            "Expect HAProxy's PROXY protocol (v1 or v2) at the start of every connection; "
            "the client address is taken from it. Needs trusted_proxy: a connection from "
            "another peer, or without the header, is closed unanswered."),
    Setting("drain_seconds", "float", 0.0,
            "On SIGTERM, seconds during which /readyz answers 503 (so a load balancer "
            "moves new requests away) before the listener closes.", "SECONDS"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def to_str(setting: Setting, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(setting.name, f"expected text, got {value!r}")
    return value


def to_int(setting: Setting, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(setting.name, f"expected a whole number, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(setting.name, f"expected a whole number, got {value!r}") from None


def to_float(setting: Setting, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(setting.name, f"expected a number of seconds, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(setting.name, f"expected a number, got {value!r}") from None


def to_bool(setting: Setting, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(setting.name, f"expected true or false, got {value!r}")


def to_list(setting: Setting, value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ConfigError(setting.name, f"expected a list of names, got {value!r}")
    return tuple(i.strip() for i in items if i.strip())


_SIZE = re.compile(r"^\s*(\d+)\s*(b|kib|kb|k|mib|mb|m)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20}


def to_size(setting: Setting, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ConfigError(setting.name, f"expected a size such as 65536 or 64KiB, got {value!r}")
    unit = match.group(2).lower() if match.group(2) else None
    return int(match.group(1)) * _UNITS[unit]


def to_hostport(setting: Setting, value: Any) -> HostPort:
    text = to_str(setting, value).strip()
    default_port = 5222 if setting.name == "xmpp_server" else None
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([^:\[\]]+)(?::(\d+))?", text)
    if not match:
        raise ConfigError(setting.name, f"expected HOST:PORT, got {value!r}")
    host = match.group(1) or match.group(3)
    port_text = match.group(2) or match.group(4)
    if port_text is None:
        if default_port is None:
            raise ConfigError(setting.name, f"a port is required, got {value!r}")
        port = default_port
    else:
        port = int(port_text)
    lowest = 0 if setting.name == "listen" else 1  # listen on port 0: any free port
    if not lowest <= port < 65536:
        raise ConfigError(setting.name, f"port out of range in {value!r}")
    return HostPort(host, port)


def to_path(setting: Setting, value: Any) -> Path:
    return Path(to_str(setting, value)).expanduser()


CONVERT: dict[str, Callable[[Setting, Any], Any]] = {
    "str": to_str, "int": to_int, "float": to_float, "bool": to_bool, "list": to_list,
    "size": to_size, "hostport": to_hostport, "path": to_path,
}




def example_toml() -> str:
    """An example configuration file listing every setting with its help."""
    lines = ["# xmpp-post configuration (TOML). Every key is optional but domain."]
    for s in SETTINGS:
        lines.append(f"\n# {s.help}\n# environment: {s.env}, flag: {s.flag}")
        if s.default is None:
            example = ({"CIDR": '["10.0.0.0/8"]'}.get(s.metavar, '["example.org"]')
                       if s.kind == "list" else '"..."')
            lines.append(f"# {s.name} = {example}")
        elif isinstance(s.default, bool):
            lines.append(f"# {s.name} = {str(s.default).lower()}")
        elif isinstance(s.default, str):
            lines.append(f'# {s.name} = "{s.default}"')
        else:
            lines.append(f"# {s.name} = {s.default}")
    return "\n".join(lines) + "\n"
