"""State shared by every instance, in Redis: ``RedisIdempotencyStore`` and
``RedisLoginThrottle`` (the ``state`` protocols, with the semantics documented in
``state.memory``), on one ``RedisState`` connection (redis-py's asyncio client).

* **Atomic**: each check and the update it decides on is one Lua script
  (``state.redis_scripts``), so two instances can never both claim an
  ``Idempotency-Key`` or both let through the guess that reaches a limit.
* **Self-cleaning**: every key expires by itself: an answer after the idempotency window,
  an unfinished claim after its lease (its owner may have died; a duplicate waiting for it
  then takes it over), failures after the throttle window.
* **Nothing in clear**: key names are ``StateKey`` digests of (account, address,
  Idempotency-Key), and the key is shared by the instances (``state_secret_file``), so
  their fingerprints and proofs agree. No password, JID or address is stored.
* **Nothing read back is trusted**: a stored answer is decoded strictly (``_decode``,
  ``state.check_answer``); one the gateway could not have written, or a claim that
  never runs out, is 503 ``stored_answer_unreadable`` (logged) until the entry expires,
  never a second delivery.
* **Unreachable Redis** raises ``StateUnavailable`` (503 ``state_unavailable``) where a
  decision needs it (``claim``, ``begin``). ``finish`` and ``end`` report after the fact:
  if Redis fails then, the answer already given stands and a warning is logged (an
  unfinished claim runs out with its lease).

A duplicate of a request still in progress on another instance blocks on a Redis list
that ``finish`` pushes to (one entry per waiter), re-checking at least every second.
One Redis (or a Sentinel-managed primary) is assumed: the scripts touch keys of several
hash slots, so Redis Cluster is not supported.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from xmpp_post.errors import StateUnavailable, TooManyRequests, Unprocessable
from xmpp_post.state import (
    LoginOutcome,
    StateKey,
    StoredAnswer,
    check_answer,
    redis_scripts,
    storable,
)

log = logging.getLogger(__name__)

PREFIX = "xmpp-post:"
KNOWN_GOOD_TTL = 7 * 24 * 3600.0  # seconds a password the server accepted spares the owner
MAX_ANSWER = 4 * 1024 * 1024  # bytes of an encoded answer read back (answers are small)


class RedisState:
    """One Redis connection pool and the translation of its failures."""

    def __init__(self, url: str, *, key: StateKey, timeout: float = 2.0,
                 retry_after: int = 5) -> None:
        self.key = key
        self.timeout = timeout
        self.retry_after = retry_after
        # One retry, on a fresh connection, for a connection Redis closed (a restart):
        # the scripts are written so that running one twice does no harm.
        self.client: Redis = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1, (RedisConnectionError,)))
        self._scripts = {name: self.client.register_script(getattr(redis_scripts, name))
                         for name in ("CLAIM", "FINISH", "BEGIN", "END")}

    def name(self, kind: str, *parts: str) -> str:
        """A key name that tells nothing about what it is for, without the StateKey."""
        return PREFIX + kind + ":" + self.key.digest("redis", kind, *parts).hex()[:32]

    async def run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        async with self.translated():
            return await self._scripts[script](keys=keys, args=args)

    @asynccontextmanager
    async def translated(self) -> AsyncIterator[None]:
        """Redis failures become ``StateUnavailable``."""
        try:
            yield
        except (RedisError, OSError, TimeoutError) as exc:
            if not isinstance(exc, (RedisConnectionError, OSError, TimeoutError)):
                log.error("unexpected answer from Redis: %s", exc)
            raise StateUnavailable(f"the shared state (Redis) is unavailable: "
                                   f"{type(exc).__name__}",
                                   retry_after=self.retry_after) from exc

    async def problem(self) -> str | None:
        """None if Redis answers a PING, else why not (for /readyz)."""
        try:
            async with self.translated():
                await self.client.ping()
        except StateUnavailable as exc:
            return f"{exc.message} ({exc.__cause__})"
        return None

    async def close(self) -> None:
        await self.client.aclose()


def _encode(answer: StoredAnswer) -> str:
    return json.dumps({"s": answer.status, "b": base64.b64encode(answer.body).decode(),
                       "t": answer.content_type, "h": [list(h) for h in answer.headers]})


def _decode(data: object) -> StoredAnswer:
    """The answer ``_encode`` stored; ValueError for anything else (written by another
    hand or version): every value read back is checked, none is trusted."""
    if not isinstance(data, bytes) or len(data) > MAX_ANSWER:
        raise ValueError("not an encoded answer")
    doc = json.loads(data)  # a JSONDecodeError is a ValueError
    if not isinstance(doc, dict) or set(doc) != {"s", "b", "t", "h"}:
        raise ValueError("not an encoded answer")
    status, body, media_type, headers = doc["s"], doc["b"], doc["t"], doc["h"]
    if (type(status) is not int or not isinstance(body, str)
            or not isinstance(media_type, str) or not isinstance(headers, list)
            or not all(isinstance(h, list) and len(h) == 2
                       and all(isinstance(part, str) for part in h) for h in headers)):
        raise ValueError("a member of the wrong type")
    try:
        raw = base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise ValueError("a body that is not base64") from exc
    answer = StoredAnswer(status, raw, media_type, tuple((k, v) for k, v in headers))
    check_answer(answer)
    return answer


class RedisIdempotencyStore:
    """``state.IdempotencyStore`` in Redis. ``lease``: seconds an unfinished claim holds
    its key (longer than any request may take)."""

    def __init__(self, state: RedisState, *, window: float, lease: float) -> None:
        self._state = state
        self._window_ms = max(1, round(window * 1000))
        self._lease_ms = max(1, round(lease * 1000))
        self._owned: dict[tuple[str, str], str] = {}

    def _names(self, key: tuple[str, str]) -> list[str]:
        entry = self._state.name("idem", *key)
        return [entry, entry + ":wake"]

    async def claim(self, key: tuple[str, str], fingerprint: bytes) -> StoredAnswer | None:
        entry, wake = self._names(key)
        token = secrets.token_hex(12)
        args = [fingerprint, token, self._lease_ms]
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._lease_ms / 1000 + self._state.timeout
        while True:
            reply = await self._state.run("CLAIM", [entry], args)
            verdict = reply[0]
            if verdict == b"owned":
                self._owned[key] = token
                return None
            if verdict == b"reused":
                raise Unprocessable("this Idempotency-Key was already used for a different "
                                    "request", code="idempotency_key_reused")
            if verdict == b"answer":
                try:
                    return _decode(reply[1])
                except ValueError as exc:
                    raise self._unreadable(entry, str(exc), int(reply[2])) from None
            # In progress elsewhere: wait to be woken by its finish, or re-check. A claim
            # outlives its lease only when its entry has no expiry: not one we wrote.
            if verdict != b"pending" or int(reply[1]) < 0 or loop.time() > give_up:
                raise self._unreadable(entry, "a claim that never runs out", int(reply[1]))
            left = max(int(reply[1]), 10) / 1000
            wait = max(0.01, min(left, 1.0, self._state.timeout / 2))
            async with self._state.translated():
                await self._state.client.blpop([wake], timeout=wait)

    def _unreadable(self, entry: str, problem: str, ttl_ms: int) -> StateUnavailable:
        """What a retry gets when its key's entry cannot be read: not a second delivery
        (the first may have been sent), but 503 until the entry expires."""
        log.error("the Idempotency-Key entry %s in Redis cannot be read (%s): retries "
                  "with that key are refused until it expires", entry, problem)
        wait = math.ceil(ttl_ms / 1000) if ttl_ms > 0 else self._state.retry_after
        return StateUnavailable("the answer stored for this Idempotency-Key cannot be read; "
                                "the request may have been sent already",
                                code="stored_answer_unreadable", retry_after=max(1, wait))

    async def finish(self, key: tuple[str, str], answer: StoredAnswer | None) -> None:
        token = self._owned.pop(key, None)
        if token is None:
            return
        encoded = _encode(answer) if answer is not None and storable(answer.status) else ""
        try:
            await self._state.run("FINISH", self._names(key),
                                  [token, encoded, self._window_ms, self._lease_ms])
        except StateUnavailable as exc:
            log.warning("could not record an Idempotency-Key answer (%s); the key is "
                        "released when its lease runs out", exc.__cause__)


class RedisLoginThrottle:
    """``state.LoginThrottle`` in Redis. An attempt let through counts against the limits
    until its ``end`` (or until ``lease`` seconds pass: its instance may have died), each
    password once, unless it is the one the server accepted for the account."""

    def __init__(self, state: RedisState, *, window: float, pair_limit: int,
                 address_limit: int, account_limit: int, lease: float = 60.0,
                 known_good_ttl: float = KNOWN_GOOD_TTL) -> None:
        self._state = state
        self._limits = [max(1, round(window * 1000)), pair_limit, address_limit, account_limit]
        self._lease_ms = max(1, round(lease * 1000))
        self._good_ms = max(1, round(known_good_ttl * 1000))

    def _keys(self, account: str, address: str) -> list[str]:
        name = self._state.name
        keys = [name("fail-pair", account, address), name("fail-addr", address),
                name("fail-acct", account), name("good", account)]
        return keys + [k + ":n" for k in keys[:3]]

    async def begin(self, account: str, address: str, proof: bytes) -> None:
        wait_ms = int(await self._state.run(
            "BEGIN", self._keys(account, address), [*self._limits, proof, self._lease_ms]))
        if wait_ms > 0:  # never longer than the window, whatever times Redis holds
            wait_ms = min(wait_ms, self._limits[0])
            raise TooManyRequests("too many failed logins; try again later",
                                  code="too_many_failed_logins",
                                  retry_after=max(1, math.ceil(wait_ms / 1000)))

    async def end(self, account: str, address: str, proof: bytes,
                  outcome: LoginOutcome) -> None:
        try:
            await self._state.run(
                "END", self._keys(account, address),
                [*self._limits, proof, outcome, self._good_ms, secrets.token_hex(8)])
        except StateUnavailable as exc:
            log.warning("could not record a login outcome (%s): %s", outcome, exc.__cause__)
