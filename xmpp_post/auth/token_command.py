"""``xmpp-post token create NAME --account JID [--to JID …] [--template NAME]
[--rate N/minute]``: a new API token, printed once, and the TOML that configures it.

The token is ``xpt_`` and 32 random bytes (256 bits) in URL-safe base64; the
configuration keeps only its SHA-256, so a leaked configuration file leaks no token.
The entry is checked by the same code that reads the configuration.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from xmpp_post.config.tokens_webhooks import TOKEN_PREFIX, parse_tokens
from xmpp_post.errors import ConfigError

TOKEN_BYTES = 32


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def toml_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)  # a TOML basic string


def print_entry(table: str, entry: dict[str, Any], account: str, out: TextIO) -> None:
    """The TOML table to paste into the configuration, and what else it needs."""
    print("Add this to the configuration file and reload the gateway (SIGHUP):\n", file=out)
    print(f"[{table}]", file=out)
    for key, value in entry.items():
        print(f"{key} = {toml_value(value)}", file=out)
    print(f'# {account} needs an [accounts."{account}"] entry with its password_file',
          file=out)


def create_command(name: str, account: str, to: Sequence[str] = (),
                   template: str | None = None, rate: str | None = None, *,
                   stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Print a new token and its ``[tokens.NAME]`` entry; 2 when an argument is invalid."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    token = new_token()
    entry: dict[str, Any] = {"sha256": hashlib.sha256(token.encode()).hexdigest(),
                             "account": account}
    if to:
        entry["to"] = list(to)
    if template is not None:
        entry["template"] = template
    if rate is not None:
        entry["rate"] = rate
    try:
        parsed = parse_tokens({name: entry}, None).by_name[name]
    except ConfigError as exc:
        print(f"xmpp-post: {exc}", file=err)
        return 2
    entry["account"] = parsed.account
    if parsed.to is not None:
        entry["to"] = sorted(parsed.to)
    print("The new token (it is shown only this once; the configuration keeps its "
          "SHA-256):\n", file=out)
    print(f"    {token}\n", file=out)
    print_entry(f"tokens.{name}", entry, parsed.account, out)
    return 0
