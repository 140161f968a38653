"""The running configuration, swappable as a whole on reload (SIGHUP).

Whatever may change while the gateway runs (accounts, tokens, webhooks, topics, the
templates) is read through one ``LiveConfig`` at the moment it is needed, never copied,
so a reload takes effect for the next request: a revoked token stops at once. The flat
settings (listen address, domains, timeouts, ...) need a restart; a reload that changes
them says so and keeps the running ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from xmpp_post.config import SETTINGS, Config
from xmpp_post.config.accounts import Account
from xmpp_post.config.grants import Tokens, Webhook

_EMPTY_TOKENS = Tokens()


class LiveConfig:
    """Holds the current ``Config``; ``swap`` replaces its sections (and extras)."""

    def __init__(self, config: Config, extras: Mapping[str, Any] | None = None) -> None:
        self._config = config
        self._extras: dict[str, Any] = dict(extras or {})

    @property
    def current(self) -> Config:
        return self._config

    @property
    def accounts(self) -> Mapping[str, Account]:
        accounts: Mapping[str, Account] = self._config.sections.get("accounts") or {}
        return accounts

    @property
    def tokens(self) -> Tokens:
        tokens: Tokens = self._config.sections.get("tokens") or _EMPTY_TOKENS
        return tokens

    @property
    def webhooks(self) -> Mapping[str, Webhook]:
        hooks: Mapping[str, Webhook] = self._config.sections.get("webhooks") or {}
        return hooks

    def extra(self, name: str, default: Any = None) -> Any:
        """Something built from the configuration and swapped with it (the templates)."""
        return self._extras.get(name, default)

    def swap(self, fresh: Config, extras: Mapping[str, Any] | None = None) -> list[str]:
        """Take ``fresh``'s sections (and ``extras``); return the flat settings that
        differ from the running ones, which keep their running values until a restart."""
        ignored = [s.name for s in SETTINGS
                   if getattr(fresh, s.name) != getattr(self._config, s.name)]
        self._config = replace(self._config, sections=fresh.sections)
        if extras is not None:
            self._extras.update(extras)
        return ignored
