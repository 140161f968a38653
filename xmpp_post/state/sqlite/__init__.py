"""State that survives a restart: one SQLite database (the standard library's ``sqlite3``)
in a state directory (``--state-dir``), for one gateway instance.

* ``state_files``: the directory and its files (``state.db``, ``state.key``, ``lock``) and the
  rules they are held to: the directory refused when group or others may write to it,
  the database 0600, one gateway per directory.
* ``schema``: the schema's version table and the migrations; a newer database refused.
* ``connection``: how the database is opened (WAL, ``synchronous=NORMAL``, no automatic
  checkpoints) and SQLite's failures in words.
* ``database``: ``SqliteState``, the open database: the requests' reads and writes on
  the event loop (writes of one turn committed together), failures translated into
  ``StateUnavailable``, the pause after a failed write.
* ``upkeep``: the owned background task and its thread: expiry, checkpoints, row counts.
* ``stores``: ``SqliteIdempotencyStore``, ``SqliteKeyValue``, ``SqliteQueues``.

What is kept: the final answers to ``Idempotency-Key`` requests (status, body, media
type and the headers to repeat: the same bytes the client got, which hold no password)
under keyed digests, and what the gateway's own features put in the key-value store and
the queues. No password, no JID in clear in the answers' keys.
"""

from __future__ import annotations

from xmpp_post.state.sqlite.database import SqliteState
from xmpp_post.state.sqlite.stores import (
    SqliteIdempotencyStore,
    SqliteKeyValue,
    SqliteQueues,
    sqlite_lasting,
)

__all__ = ["SqliteIdempotencyStore", "SqliteKeyValue", "SqliteQueues", "SqliteState",
           "sqlite_lasting"]
