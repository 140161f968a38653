"""Standard Webhooks (standardwebhooks.com) signing of a bot's deliveries.

A delivery carries ``webhook-id`` (the same on every try, so the endpoint can drop
duplicates: for a message the server gave a stanza-id, derived from it, so every
instance delivering that message uses the same one; ``message_webhook_id``),
``webhook-timestamp`` (Unix seconds of this try) and ``webhook-signature``: ``v1,`` and
the base64 of HMAC-SHA256, keyed by the secret's decoded bytes, of ``id.timestamp.body``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from xmpp_post import __version__

USER_AGENT = f"xmpp-post/{__version__} (bot webhook)"


def new_webhook_id() -> str:
    """A fresh delivery id: ``msg_`` and 24 random base32 characters."""
    return "msg_" + base64.b32encode(secrets.token_bytes(15)).decode().lower()


def message_webhook_id(bot: str, scope: str, stanza_id: str) -> str:
    """The delivery id of the message ``scope`` (the bot's account, or a room) gave the
    stanza-id ``stanza_id``: ``msg_`` and 24 base32 characters of a SHA-256 of the three,
    so any instance delivering that message uses the same id. Each part is
    length-prefixed, so two different triples never hash the same text (the XMPP side
    bounds stanza-ids: ``bot_stanzas.MAX_STANZA_ID``)."""
    parts = [part.encode() for part in (bot, scope, stanza_id)]
    digest = hashlib.sha256(b"xmpp-post bot message\0" + b"".join(
        len(part).to_bytes(4, "big") + part for part in parts)).digest()
    return "msg_" + base64.b32encode(digest[:15]).decode().lower()


def signature(secret: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.digest(secret, signed, hashlib.sha256)
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: bytes, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of one try of a delivery."""
    return {"Content-Type": "application/json", "User-Agent": USER_AGENT,
            "webhook-id": webhook_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, webhook_id, timestamp, body)}
