"""The database's schema, its version, and the migrations between versions.

``schema_version`` holds one row: the version of the schema and the xmpp-post that
wrote it last. At start (``prepare``):

* an empty database gets the latest schema;
* one of an older version is migrated, every step in one transaction (a failure leaves
  it as it was);
* one of a newer version (written by a later xmpp-post) is refused, and never written:
  its version is read over a read-only connection before anything else touches it;
* a file that is not an xmpp-post state database is refused, never overwritten.

Versions: 1 kept the ``Idempotency-Key`` answers; 2 added the key-value store, the
queues and ``meta`` (the store's own notes, such as the time of the last write probe).
A new version appends a step to ``MIGRATIONS``, never edits an old one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from xmpp_post import __version__
from xmpp_post.errors import ConfigError

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: answers to Idempotency-Key requests (``k``: a keyed digest of sender and key)
        "CREATE TABLE schema_version (version INTEGER NOT NULL, written_by TEXT NOT NULL)",
        "CREATE TABLE answers (id INTEGER PRIMARY KEY, k BLOB NOT NULL UNIQUE, "
        "fingerprint BLOB NOT NULL, status INTEGER NOT NULL, body BLOB NOT NULL, "
        "content_type TEXT NOT NULL, headers TEXT NOT NULL, expires REAL NOT NULL)",
    ),
    (  # 2: the key-value store and the queues (``state.lasting``); the store's own notes
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
        "CREATE TABLE kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, "
        "expires REAL, PRIMARY KEY (namespace, key)) WITHOUT ROWID",
        "CREATE INDEX kv_expires ON kv (expires) WHERE expires IS NOT NULL",
        "CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
        "body BLOB NOT NULL, pushed REAL NOT NULL)",
        "CREATE INDEX queue_order ON queue (name, id)",
    ),
)
LATEST = len(MIGRATIONS)


def _refuse(path: Path, text: str) -> ConfigError:
    return ConfigError("state_dir", f"{path}: {text}")


def stored_version(path: Path) -> int:
    """The schema version of the database at ``path``, read without writing to it:
    0 for an empty database."""
    try:
        ro = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in ro.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                return 0
            if "schema_version" not in tables:
                raise _refuse(path, "is not an xmpp-post state database (no "
                                    "schema_version table); move it away or choose "
                                    "another --state-dir")
            row = ro.execute("SELECT version, written_by FROM schema_version").fetchone()
        finally:
            ro.close()
    except sqlite3.DatabaseError as exc:
        raise _refuse(path, f"cannot be read as a state database ({exc}); it is left "
                            "as it is") from exc
    if row is None or not isinstance(row[0], int) or row[0] < 1:
        raise _refuse(path, "has no valid schema version; it is left as it is")
    version, written_by = row
    if version > LATEST:
        raise _refuse(path, f"was written by a newer xmpp-post ({written_by}, schema "
                            f"version {version}); this one ({__version__}) knows versions "
                            f"up to {LATEST}: run that version or a later one, or point "
                            "--state-dir elsewhere. The database is left as it is.")
    return int(version)


def migrate(db: sqlite3.Connection, path: Path, version: int) -> int:
    """Bring the database from ``version`` to ``LATEST``, in one transaction; the number
    of steps applied."""
    if version == LATEST:
        return 0
    try:
        db.execute("BEGIN IMMEDIATE")
        for step in MIGRATIONS[version:]:
            for statement in step:
                db.execute(statement)
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version (version, written_by) VALUES (?, ?)",
                   (LATEST, __version__))
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise _refuse(path, f"migrating the schema from version {version} to {LATEST} "
                            f"failed ({exc}); the database is left as it was") from exc
    return LATEST - version
