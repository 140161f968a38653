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

from xmpp_post.config import SETTINGS, Config
from xmpp_post.config.accounts import Account
from xmpp_post.config.tokens_webhooks import Tokens, Webhook, Webhooks
from xmpp_post.errors import ConfigError
from xmpp_post.templates import TemplateSet

_EMPTY_TOKENS = Tokens()


def load_templates(config: Config) -> TemplateSet:
    """The templates of ``config.template_dir`` and the built-ins, compiled; ConfigError
    when one does not compile or a token or webhook names a template there is not."""
    templates = TemplateSet.load(config.template_dir)
    known = set(templates.names())
    tokens: Tokens = config.sections.get("tokens") or _EMPTY_TOKENS
    hooks: Mapping[str, Webhook] = config.sections.get("webhooks") or {}
    named = [(f"tokens.{t.name}.template", t.template) for t in tokens.by_name.values()]
    named += [(f"webhooks.{h.name}.template", h.template) for h in hooks.values()]
    for where, name in named:
        if name is not None and name not in known:
            raise ConfigError(where, f"no template named {name!r}; there are "
                              f"{', '.join(sorted(known))}")
    return templates


class LiveConfig:
    """Holds the current ``Config`` and what is built from it (the templates); ``swap``
    replaces both."""

    def __init__(self, config: Config, templates: TemplateSet | None = None) -> None:
        self._config = config
        self._templates = templates if templates is not None else load_templates(config)

    @property
    def templates(self) -> TemplateSet:
        return self._templates

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

    @property
    def webhook_urls(self) -> Mapping[bytes, Webhook]:
        """The webhook URLs (``verify = "url"``) by the SHA-256 of their secret."""
        hooks = self._config.sections.get("webhooks")
        return hooks.by_digest if isinstance(hooks, Webhooks) else {}

    def encrypt_for(self, jid: str) -> str:
        """The default encryption of ``jid``'s messages: ``encrypt``, or its account's
        if stronger."""
        account = self.accounts.get(jid)
        default = self._config.encrypt
        return "omemo" if "omemo" in (default, account and account.encrypt) else default

    def swap(self, fresh: Config, templates: TemplateSet) -> list[str]:
        """Take ``fresh``'s sections and templates; return the flat settings
        that differ from the running ones: they keep their running values until a restart
        (``template_dir`` excepted: the folder is the templates' source)."""
        ignored = [s.name for s in SETTINGS if s.name != "template_dir"
                   and getattr(fresh, s.name) != getattr(self._config, s.name)]
        self._config = replace(self._config, sections=fresh.sections,
                               template_dir=fresh.template_dir)
        self._templates = templates
        return ignored
