"""JID parsing and validation, delegated to slixmpp's RFC 7622 implementation.

Every JID the gateway handles goes through here; ``InvalidJID`` never leaves this module.
The normalizing functions are pure, so their recent answers are kept (a few thousand,
least recently used first out): a busy sender's JIDs are parsed once, not per request.
"""

from __future__ import annotations

from functools import lru_cache

from slixmpp.jid import JID, InvalidJID

RECENT = 4096  # answers kept per function


class JidError(ValueError):
    """The text is not a valid JID of the expected shape."""


def _parse(text: str) -> JID:
    try:
        return JID(text)
    except InvalidJID as exc:
        raise JidError(str(exc)) from None


@lru_cache(maxsize=RECENT)
def normalize_domain(domain: str) -> str:
    """The canonical (lower-cased, IDNA-checked) form of a domain; JidError if invalid."""
    jid = _parse(domain)
    if jid.node or jid.resource:
        raise JidError("a domain has no '@' or '/'")
    return str(jid.domain)


def is_valid_domain(domain: str) -> bool:
    try:
        normalize_domain(domain)
    except JidError:
        return False
    return True


@lru_cache(maxsize=RECENT)
def account(text: str, default_domain: str) -> str:
    """The bare JID of an account named ``user@domain`` or just ``user``."""
    if "@" not in text:
        text = f"{text}@{default_domain}"
    jid = _parse(text)
    if not jid.node or jid.resource:
        raise JidError("expected user@domain")
    return str(jid.bare)


def domain_of(bare_jid: str) -> str:
    return bare_jid.rpartition("@")[2]


def local_of(bare_jid: str) -> str:
    return bare_jid.partition("@")[0]


def bare_of(jid_text: str) -> str:
    return jid_text.partition("/")[0]


@lru_cache(maxsize=RECENT)
def recipient(text: str, sender_domain: str) -> str:
    """A recipient as a normalized JID: full, bare, or a localpart on the sender's domain."""
    text = text.strip()
    head, slash, resource = text.partition("/")
    if "@" not in head:
        text = f"{head}@{sender_domain}{slash}{resource}"
    jid = _parse(text)
    if not jid.node:
        raise JidError("a recipient needs a user part")
    return str(jid.full)


@lru_cache(maxsize=RECENT)
def resourcepart(text: str) -> str:
    """``text`` as a valid, normalized JID resourcepart (a MUC nickname, for instance)."""
    if not text or text != text.strip():
        raise JidError("it is empty or starts or ends with a space")
    jid = _parse(f"nick@example.invalid/{text}")
    return str(jid.resource)


def is_bare(jid_text: str) -> bool:
    return "/" not in jid_text
