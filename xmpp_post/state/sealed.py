"""A ``KeyValue`` whose values are encrypted at rest: what OMEMO's private keys live in.

Each value is sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the
secret of ``state_secret_file`` and a purpose, with a fresh 96-bit nonce; the
namespace and key are its associated data, so a sealed value moved under another name
does not open. A copy of the state directory without that file reveals no key, and a
value that does not open (another secret, or tampering) is an error, never garbage.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from xmpp_post.state.lasting import KeyValue

NONCE = 12
VERSION = b"\x01"


class SealedValueError(Exception):
    """A stored value that does not open with this secret."""


def derive_key(secret: bytes, purpose: str) -> bytes:
    """The 256-bit key for ``purpose`` from the state secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"xmpp-post sealed state",
                info=purpose.encode("utf-8")).derive(secret)


class SealedKeyValue:
    """``KeyValue`` over ``inner``, every value sealed; see the module docstring."""

    def __init__(self, inner: KeyValue, secret: bytes, purpose: str) -> None:
        self._inner = inner
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

    async def get(self, namespace: str, key: str) -> bytes | None:
        sealed = await self._inner.get(namespace, key)
        return None if sealed is None else self.open(namespace, key, sealed)

    async def put(self, namespace: str, key: str, value: bytes, *,
                  ttl: float | None = None) -> None:
        await self._inner.put(namespace, key, self.seal(namespace, key, value), ttl=ttl)

    async def delete(self, namespace: str, key: str) -> bool:
        return await self._inner.delete(namespace, key)

    async def keys(self, namespace: str, prefix: str = "", limit: int = 1000) -> list[str]:
        return await self._inner.keys(namespace, prefix, limit)
