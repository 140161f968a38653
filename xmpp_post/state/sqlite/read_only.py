"""The key-value store of a state directory read while a running gateway holds it.

``ReadOnlyKeyValue`` opens ``state.db`` read-only (SQLite's ``mode=ro``), without the
directory's lock and without migrating, so a command can read what a running gateway
keeps (``xmpp-post omemo fingerprint``). It never writes: ``put`` and ``delete`` raise.
SQLite's WAL lets it read next to the gateway's writes, seeing the last commit.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from xmpp_post.errors import ConfigError
from xmpp_post.state.sqlite import state_files


class ReadOnlyKeyValue:
    """``lasting.KeyValue``'s reads over a state directory another process may hold."""

    def __init__(self, directory: Path) -> None:
        path = directory / state_files.DATABASE
        if not path.is_file():
            raise ConfigError("state_dir", f"{directory} holds no state database "
                              f"({state_files.DATABASE}): has the gateway run with it?")
        try:
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            self._db.execute("SELECT 1 FROM kv LIMIT 1")
        except sqlite3.Error as exc:
            raise ConfigError("state_dir", f"{path} cannot be read ({exc})") from None

    def close(self) -> None:
        self._db.close()

    async def get(self, namespace: str, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM kv WHERE namespace = ? AND key = ? AND "
                               "(expires IS NULL OR expires > ?)",
                               (namespace, key, time.time())).fetchone()
        return None if row is None else bytes(row[0])

    async def put(self, namespace: str, key: str, value: bytes, *,
                  ttl: float | None = None) -> None:
        raise PermissionError("the state directory is open read-only")

    async def delete(self, namespace: str, key: str) -> bool:
        raise PermissionError("the state directory is open read-only")

    async def keys(self, namespace: str, prefix: str = "", limit: int = 1000) -> list[str]:
        rows = self._db.execute(
            "SELECT key FROM kv WHERE namespace = ? AND substr(key, 1, ?) = ? AND "
            "(expires IS NULL OR expires > ?) ORDER BY key LIMIT ?",
            (namespace, len(prefix), prefix, time.time(), max(0, limit))).fetchall()
        return [str(row[0]) for row in rows]
