"""``xmpp-post webhook create NAME --account JID --to JID … [--template NAME]``: a new
webhook URL, printed once, and the TOML that configures it.

The URL's path is ``/hooks/xph_`` and 32 random bytes (256 bits) in URL-safe base64; the
configuration keeps only the SHA-256 of its secret (``xph_…``), so a leaked
configuration file leaks no URL. The entry is checked by the same code that reads the
configuration.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from xmpp_post.auth.token_command import print_entry
from xmpp_post.auth.webhook_urls import new_secret
from xmpp_post.config.tokens_webhooks import parse_webhooks
from xmpp_post.errors import ConfigError

DEFAULT_TEMPLATE = "slack"


def create_command(name: str, account: str, to: Sequence[str],
                   template: str | None = None, *,
                   stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Print a new webhook URL's path and its ``[webhooks.NAME]`` entry; 2 when an
    argument is invalid."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    secret = new_secret()
    entry: dict[str, Any] = {"verify": "url",
                             "sha256": hashlib.sha256(secret.encode()).hexdigest(),
                             "account": account, "to": list(to),
                             "template": template or DEFAULT_TEMPLATE}
    try:
        parsed = parse_webhooks({name: entry}, None)[name]
    except ConfigError as exc:
        print(f"xmpp-post: {exc}", file=err)
        return 2
    entry["account"], entry["to"] = parsed.account, list(parsed.to)
    print("The new webhook URL's path (it is shown only this once; the configuration "
          "keeps its SHA-256).\nGive the tool https://<the gateway's address> followed "
          "by:\n", file=out)
    print(f"/hooks/{secret}\n", file=out)
    print_entry(f"webhooks.{name}", entry, parsed.account, out)
    return 0
