"""Helpers for the token and webhook tests: secret files, TOML configurations, signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from xmpp_post import config
from xmpp_post.auth.token_command import new_token
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.service import Gateway


def secret_file(folder: Path, name: str, text: str, mode: int = 0o600) -> Path:
    path = folder / name
    path.write_text(text)
    path.chmod(mode)
    return path


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


def toml(tables: Mapping[str, Mapping[str, Mapping[str, Any]]], flat: str = "") -> str:
    """``{"tokens": {"ci": {...}}}`` as TOML (sections of named entries)."""
    lines = [flat] if flat else []
    for section, entries in tables.items():
        for name, entry in entries.items():
            lines.append(f"[{section}.{json.dumps(name)}]")
            lines += [f"{key} = {_value(value)}" for key, value in entry.items()]
    return "\n".join(lines) + "\n"


def token_entry(account: str, **scope: Any) -> tuple[str, dict[str, Any]]:
    """A new token and its ``[tokens.NAME]`` entry."""
    token = new_token()
    return token, {"sha256": hashlib.sha256(token.encode()).hexdigest(), "account": account,
                   **scope}


def flags(prosody: ProsodyServer, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "domain": [prosody.domain], "listen": "127.0.0.1:0",
        "xmpp_server": f"127.0.0.1:{prosody.c2s_port}", "ca_file": str(prosody.cert_file),
        "connect_timeout": "5", "ack_timeout": "5",
    }
    values.update(overrides)
    return values


def loader(prosody: ProsodyServer, path: Path, **overrides: Any) -> Callable[[], config.Config]:
    return lambda: config.load(flags(prosody, **overrides), environ={}, config_file=path)


@asynccontextmanager
async def gateway_from(prosody: ProsodyServer, path: Path,
                       **overrides: Any) -> AsyncIterator[Gateway]:
    """A started gateway configured by the file ``path``, reloadable from it."""
    source = loader(prosody, path, **overrides)
    gateway = Gateway(source(), source=source)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def hex_hmac(secret: str | bytes, data: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def standard_signature(key: bytes, msg_id: str, stamp: str, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def metric(text: str, sample: str, /, **labels: str) -> float:
    """A sample's value from Prometheus text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    head = f"{sample}{{{wanted}}}" if labels else sample
    for line in text.splitlines():
        if line.startswith(head + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
