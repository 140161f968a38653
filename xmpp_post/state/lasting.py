"""State that belongs to one instance and must outlive it: a key-value store and durable
FIFO queues, for the features that cannot keep their state in memory (OMEMO's keys and
devices, a bot's messages waiting for its callback, which sent message carried which
alert).

* ``KeyValue``: values (bytes) under (namespace, key), optionally expiring.
* ``Queues``: one FIFO queue per name; ``push`` appends, ``peek`` reads the oldest
  without removing them, ``ack`` removes one by its id once it is handled (so an item
  is handled at least once, even across a crash), ``length`` and ``oldest_age`` say how
  far behind the consumer is.

Both live in the state directory (``state.sqlite``) or, without one, in this process
(``state.memory_lasting``: lost on restart). They stay per instance even with
``--redis-url``: an instance's OMEMO devices and its bots' queues are its own, so they
are never in Redis. A feature that needs them to last calls ``require_lasting`` at
start, which refuses to start without a state directory, naming the setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from xmpp_post.errors import ConfigError

MAX_NAME = 200  # characters of a namespace, key or queue name


@dataclass(frozen=True)
class QueueItem:
    """One item of a queue: its id (increasing, never reused), body and the wall-clock
    time (Unix seconds) it was pushed."""

    id: int
    body: bytes
    pushed: float


class KeyValue(Protocol):
    async def get(self, namespace: str, key: str) -> bytes | None:
        """The value, or None if there is none (or it expired)."""
        ...

    async def put(self, namespace: str, key: str, value: bytes, *,
                  ttl: float | None = None) -> None:
        """Set the value, replacing any; it expires ``ttl`` seconds from now (None: never)."""
        ...

    async def delete(self, namespace: str, key: str) -> bool:
        """Remove the value; whether there was one."""
        ...

    async def keys(self, namespace: str, prefix: str = "", limit: int = 1000) -> list[str]:
        """Up to ``limit`` keys of ``namespace`` starting with ``prefix``, sorted."""
        ...


class Queues(Protocol):
    async def push(self, queue: str, body: bytes) -> int:
        """Append ``body``; its id. Raises ``Overloaded`` (``queue_full``) when the queue
        holds its most items already."""
        ...

    async def peek(self, queue: str, limit: int = 1) -> list[QueueItem]:
        """The oldest ``limit`` items, oldest first, left in the queue."""
        ...

    async def ack(self, queue: str, item_id: int) -> bool:
        """Remove the item (it was handled); whether it was there."""
        ...

    async def length(self, queue: str) -> int:
        ...

    async def oldest_age(self, queue: str) -> float | None:
        """Seconds since the oldest item was pushed; None when the queue is empty."""
        ...


@dataclass(frozen=True)
class Lasting:
    """An instance's own lasting state. ``durable``: it survives a restart (a state
    directory), rather than living in this process."""

    kv: KeyValue
    queues: Queues
    durable: bool


def require_lasting(lasting: Lasting, feature: str) -> None:
    """Refuse to start ``feature`` when its state would not survive a restart."""
    if not lasting.durable:
        raise ConfigError("state_dir", f"{feature} keeps state that must survive a restart: "
                          "set --state-dir (XMPP_POST_STATE_DIR, or StateDirectory= under "
                          "systemd)")


def check_name(what: str, name: str) -> str:
    """A namespace, key or queue name: 1 to ``MAX_NAME`` characters (the callers are the
    gateway's own features, so a bad one is a bug, not a client's error)."""
    if not 0 < len(name) <= MAX_NAME:
        raise ValueError(f"a {what} must be 1 to {MAX_NAME} characters")
    return name
