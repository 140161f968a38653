"""Identifiers the gateway makes up, unique within this process and cheap to make.

* ``request_id()``: for logs and ``X-Request-Id``; a random prefix for this process and a
  counter (16 characters), so ids of two processes do not collide and nothing secret is
  spent on them.
* ``stanza_id()``: for a ``<message/>`` the client gave no id; it reaches other servers
  and recipients, so it is a keyed hash of a counter (the key is random and lives only in
  this process): unique, and telling nobody how many messages the gateway sent.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets

_PREFIX = secrets.token_hex(4)
_KEY = secrets.token_bytes(16)
_requests = itertools.count(1)
_stanzas = itertools.count(1)


def request_id() -> str:
    return f"{_PREFIX}{next(_requests):08x}"


def stanza_id() -> str:
    return hashlib.blake2b(next(_stanzas).to_bytes(8, "little"), key=_KEY,
                           digest_size=8).hexdigest()
