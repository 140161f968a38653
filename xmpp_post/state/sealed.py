"""A ``KeyValue`` whose values are encrypted at rest (what OMEMO's private keys live in),
and ``Queues`` whose items are (the messages a bot's deliveries wait with).

Each value is sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the
secret of ``state_secret_file`` and a purpose, with a fresh 96-bit nonce; the
namespace and key (for a queue item: the queue's name) are its associated data, so a
sealed value moved under another name does not open. A copy of the state directory
without that file reveals no key and no message, and a value that does not open
(another secret, or tampering) is an error, never garbage.
"""

from __future__ import annotations

import os
from dataclasses import replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from xmpp_post.state.lasting import KeyValue, QueueItem, Queues

NONCE = 12
VERSION = b"\x01"


class SealedValueError(Exception):
    """A stored value that does not open with this secret."""


def derive_key(secret: bytes, purpose: str) -> bytes:
    """The 256-bit key for ``purpose`` from the state secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"xmpp-post sealed state",
                info=purpose.encode("utf-8")).derive(secret)


class Sealer:
    """Seals and opens values under the key for ``purpose``; see the module docstring."""

    def __init__(self, secret: bytes, purpose: str) -> None:
        self._aead = AESGCM(derive_key(secret, purpose))

    @staticmethod
    def _associated(namespace: str, key: str) -> bytes:
        return VERSION + namespace.encode("utf-8") + b"\x00" + key.encode("utf-8")

    def seal(self, namespace: str, key: str, value: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return VERSION + nonce + self._aead.encrypt(nonce, value,
                                                    self._associated(namespace, key))

    def open(self, namespace: str, key: str, sealed: bytes) -> bytes:
        if len(sealed) < 1 + NONCE + 16 or sealed[:1] != VERSION:
            raise SealedValueError(f"the stored value {namespace}/{key} is not sealed")
        try:
            return self._aead.decrypt(sealed[1:1 + NONCE], sealed[1 + NONCE:],
                                      self._associated(namespace, key))
        except InvalidTag:
            raise SealedValueError(f"the stored value {namespace}/{key} does not open with "
                                   "this state_secret_file") from None


class SealedKeyValue:
    """``KeyValue`` over ``inner``, every value sealed; see the module docstring."""

    def __init__(self, inner: KeyValue, secret: bytes, purpose: str) -> None:
        self._inner = inner
        self._sealer = Sealer(secret, purpose)

    async def get(self, namespace: str, key: str) -> bytes | None:
        sealed = await self._inner.get(namespace, key)
        return None if sealed is None else self._sealer.open(namespace, key, sealed)

    async def put(self, namespace: str, key: str, value: bytes, *,
                  ttl: float | None = None) -> None:
        await self._inner.put(namespace, key, self._sealer.seal(namespace, key, value),
                              ttl=ttl)

    async def delete(self, namespace: str, key: str) -> bool:
        return await self._inner.delete(namespace, key)

    async def keys(self, namespace: str, prefix: str = "", limit: int = 1000) -> list[str]:
        return await self._inner.keys(namespace, prefix, limit)


QUEUE = "queue"  # the namespace of a queue item's associated data


class SealedQueues:
    """``Queues`` over ``inner``, every item's body sealed. An item that does not open
    (another secret, tampering) is read with an empty body, which no reader takes for a
    message; an item written before sealing began (not sealed) is read as it is."""

    def __init__(self, inner: Queues, secret: bytes, purpose: str) -> None:
        self._inner = inner
        self._seal = Sealer(secret, purpose)

    async def push(self, queue: str, body: bytes) -> int:
        return await self._inner.push(queue, self._seal.seal(QUEUE, queue, body))

    async def peek(self, queue: str, limit: int = 1) -> list[QueueItem]:
        return [replace(item, body=self._open(queue, item.body))
                for item in await self._inner.peek(queue, limit)]

    def _open(self, queue: str, body: bytes) -> bytes:
        if not body.startswith(VERSION):
            return body  # written before the items were sealed
        try:
            return self._seal.open(QUEUE, queue, body)
        except SealedValueError:
            return b""

    async def ack(self, queue: str, item_id: int) -> bool:
        return await self._inner.ack(queue, item_id)

    async def length(self, queue: str) -> int:
        return await self._inner.length(queue)

    async def oldest_age(self, queue: str) -> float | None:
        return await self._inner.oldest_age(queue)

