"""Where OMEMO keeps its keys: an injected store of values, never ``xmpp_post.state``.

``KeyStore`` is the little the XMPP side needs of a store: bytes under (namespace, key).
The state's ``KeyValue`` has this shape; the wiring (``state_setup.omemo_keys``) hands
one that encrypts every value at rest under a key derived from ``state_secret_file``.
The XMPP side never imports the state (an import contract), so it names only this.

``AccountStorage`` is the OMEMO library's ``omemo.Storage`` for one sending account,
backed by a ``KeyStore``: its JSON values as UTF-8 under the namespace ``omemo:<jid>``
(a name too long for the store is replaced by its SHA-256), read once and then kept
by the library's own cache.
"""

from __future__ import annotations

import hashlib
import json
from typing import Protocol

from omemo.storage import Just, Maybe, Nothing, Storage, StorageException
from omemo.types import JSONType

MAX_NAME = 200  # of a namespace or key, as the state's stores take them


class KeyStore(Protocol):
    async def get(self, namespace: str, key: str) -> bytes | None: ...

    async def put(self, namespace: str, key: str, value: bytes, *,
                  ttl: float | None = None) -> None: ...

    async def delete(self, namespace: str, key: str) -> bool: ...


def _name(text: str) -> str:
    if 0 < len(text) <= MAX_NAME:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def namespace_of(account: str) -> str:
    """The store's namespace for ``account``'s OMEMO data."""
    return _name(f"omemo:{account}")


class AccountStorage(Storage):
    """``omemo.Storage`` for one account's device, in a ``KeyStore``."""

    def __init__(self, store: KeyStore, account: str) -> None:
        super().__init__()
        self._values = store
        self._namespace = namespace_of(account)

    async def _load(self, key: str) -> Maybe[JSONType]:
        try:
            raw = await self._values.get(self._namespace, _name(key))
        except Exception as exc:
            raise StorageException(f"reading OMEMO data failed: {exc}") from exc
        if raw is None:
            return Nothing()
        value: JSONType = json.loads(raw.decode("utf-8"))
        return Just(value)

    async def _store(self, key: str, value: JSONType) -> None:
        data = json.dumps(value, separators=(",", ":")).encode("utf-8")
        try:
            await self._values.put(self._namespace, _name(key), data)
        except Exception as exc:
            raise StorageException(f"writing OMEMO data failed: {exc}") from exc

    async def _delete(self, key: str) -> None:
        try:
            await self._values.delete(self._namespace, _name(key))
        except Exception as exc:
            raise StorageException(f"deleting OMEMO data failed: {exc}") from exc
