"""How the state database is opened, and SQLite's failures said as an operator would."""

from __future__ import annotations

import sqlite3
from pathlib import Path

WAL_LIMIT = 64 * 1024 * 1024  # bytes the WAL file is cut back to once checkpointed
_REASONS = {  # SQLite's primary error codes, as an operator would say them
    "SQLITE_FULL": "the disk is full",
    "SQLITE_READONLY": "the database is read-only",
    "SQLITE_IOERR": "an I/O error",
    "SQLITE_BUSY": "the database is busy",
    "SQLITE_LOCKED": "the database is busy",
    "SQLITE_CORRUPT": "the database is corrupt",
    "SQLITE_CANTOPEN": "a file of the database cannot be opened",
    "SQLITE_NOTADB": "the file is not a database",
}
KINDS = {"answers": "idempotency", "kv": "kv", "queue": "queue"}  # table -> metrics kind


def reason(exc: BaseException) -> str:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return _REASONS.get("_".join(name.split("_")[:2]), name or type(exc).__name__)


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, cached_statements=64)
    db.execute("PRAGMA busy_timeout = 100")  # only an operator's own writes can hold it
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA wal_autocheckpoint = 0")  # the upkeep thread checkpoints
    db.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
    return db
