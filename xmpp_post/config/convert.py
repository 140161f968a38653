"""The converters of settings: a raw value (text from a flag or the environment, or a
TOML value) turned into the setting's type, or ``ConfigError`` naming the setting."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xmpp_post.errors import ConfigError

if TYPE_CHECKING:
    from xmpp_post.config.settings import Setting


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


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
