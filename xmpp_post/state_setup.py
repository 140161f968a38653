"""The gateway's state chosen from its configuration (wiring, beside ``service``).

* ``open_state``: the ``state_dir`` database (``state.sqlite``), or None, and the
  instance's lasting state (``state.lasting``: key-value store, queues) in it, or in
  this process (``state.memory_lasting``) without one.
* ``with_state``: the guards given this process's state, or the state shared in Redis
  (``state.redis``, with ``redis_url``), its digests keyed by ``state_secret_file``, else
  by the state directory's key. The ``Idempotency-Key`` answers are in Redis, else in
  the state directory, else in memory; the login throttle is in Redis or in memory.

* ``omemo_keys``: where OMEMO keeps its keys (``state.sealed``: encrypted at rest under
  a key derived from ``state_secret_file``, in the state directory), or why it cannot.

Redis and SQLite are imported only when configured.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from xmpp_post.config import Config
from xmpp_post.errors import ConfigError
from xmpp_post.http.guards import Guards
from xmpp_post.metrics import Metrics
from xmpp_post.state import StateKey
from xmpp_post.state.lasting import KeyValue, Lasting
from xmpp_post.state.memory_lasting import memory_lasting

if TYPE_CHECKING:
    from xmpp_post.state.redis import RedisState
    from xmpp_post.state.sqlite import SqliteState


def open_state(config: Config, metrics: Metrics) -> tuple[SqliteState | None, Lasting]:
    """The ``state_dir`` database or None (``ConfigError`` naming ``state_dir`` if it
    cannot be used: in use, too open, newer, ...), and the instance's lasting state, in
    it or in memory; ``metrics`` report the database's size."""
    if config.state_dir is None:
        return None, memory_lasting(retry_after=config.retry_after)
    from xmpp_post.state.sqlite import SqliteState, sqlite_lasting

    state = SqliteState(config.state_dir, key=config.state_secret,
                        retry_after=config.retry_after)
    metrics.track_state(state.size, state.rows)
    return state, sqlite_lasting(state)


def with_state(config: Config, base: Guards,
               state: SqliteState | None = None) -> tuple[Guards, RedisState | None]:
    """``base`` (guards with this process's state) with the key of the digests, and
    with the idempotency answers in ``state`` if given, or with the state shared in
    Redis (then returned too, to be closed)."""
    key = (StateKey(config.state_secret) if config.state_secret is not None
           else state.key if state is not None else base.key)
    base = replace(base, key=key)
    if not config.redis_url:
        if state is not None:
            from xmpp_post.state.sqlite import SqliteIdempotencyStore

            base = replace(base, idempotency=SqliteIdempotencyStore(
                state, window=config.idempotency_window,
                max_entries=config.idempotency_max_entries))
        return base, None
    from xmpp_post.state.redis import RedisIdempotencyStore, RedisLoginThrottle, RedisState

    shared = RedisState(config.redis_url, key=key, timeout=config.redis_timeout,
                        retry_after=config.retry_after)
    # Longer than any request: its body, a first login (request_timeout), then its
    # delivery (request_timeout again) and rendering, or its files' uploads (each at
    # most upload_timeout).
    lease = 2 * config.request_timeout + config.client_timeout + 5 + config.upload_timeout
    throttle = RedisLoginThrottle(shared, window=config.auth_failure_window,
                                  pair_limit=config.auth_failure_limit,
                                  address_limit=config.auth_failure_limit_address,
                                  account_limit=config.auth_failure_limit_account,
                                  lease=lease)
    store = RedisIdempotencyStore(shared, window=config.idempotency_window, lease=lease)
    return replace(base, throttle=throttle, idempotency=store), shared


OMEMO_PURPOSE = "omemo keys"


def omemo_keys(config: Config, lasting: Lasting) -> tuple[KeyValue | None, str]:
    """The store of OMEMO's keys, or None and why there is none. A configured default
    of ``omemo`` (``encrypt``, an account's, a token's or a webhook's) without a state
    directory and a secret refuses to start (``ConfigError``)."""
    if lasting.durable and config.state_secret is not None:
        from xmpp_post.state.sealed import SealedKeyValue

        return SealedKeyValue(lasting.kv, config.state_secret, OMEMO_PURPOSE), ""
    missing = ("state_dir and state_secret_file" if not lasting.durable
               else "state_secret_file")
    wants = omemo_wanted(config)
    if wants:
        raise ConfigError("state_dir" if not lasting.durable else "state_secret_file",
                          f"{wants} asks for encrypt = omemo, which keeps its keys in the "
                          f"state directory, encrypted: set {missing}")
    return None, (f"this gateway keeps no OMEMO keys: its operator has not set {missing}")


def omemo_wanted(config: Config) -> str:
    """Which setting asks for OMEMO by default (empty: none does)."""
    if config.encrypt == "omemo":
        return "encrypt"
    for section in ("accounts", "tokens", "webhooks"):
        found = config.sections.get(section)
        entries = getattr(found, "by_name", found) or {}
        for name, entry in entries.items():
            if getattr(entry, "encrypt", "none") == "omemo":
                return f"[{section}.{name!r}]"
    return ""
