"""What an ``Idempotency-Key`` entry in Redis hands back is checked, never trusted: an
entry written by another hand (or version) is a clear 503 until it expires, never a 500
and never a second delivery, and only the headers the gateway stores are replayed."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory
from tests.helpers.cluster import secret_file
from xmpp_post.errors import StateUnavailable, TooManyRequests
from xmpp_post.lab.redis_server import RedisServer
from xmpp_post.state import StateKey, StoredAnswer
from xmpp_post.state.redis import RedisIdempotencyStore, RedisLoginThrottle, RedisState

KEY = ("alice@x", "k1")


def encoded(status: object = 201, body: object = None, media_type: object = "application/json",
            headers: object = ()) -> bytes:
    """An entry as ``state.redis`` writes it, with any member replaced."""
    text = base64.b64encode(b'{"id": "x"}').decode() if body is None else body
    return json.dumps({"s": status, "b": text, "t": media_type,
                       "h": [list(h) for h in headers]  # type: ignore[attr-defined]
                       if isinstance(headers, tuple) else headers}).encode()


GARBAGE = {
    "not json": b"garbage",
    "not utf-8": b"\xff\xfe",
    "a list": b"[201]",
    "members missing": b'{"s": 201}',
    "a member more": encoded()[:-1] + b', "x": 1}',
    "status as text": encoded(status="201"),
    "status true": encoded(status=True),
    "status never stored": encoded(status=500),
    "body not base64": encoded(body="not base64!"),
    "media type html": encoded(media_type="text/html"),
    "headers not a list": encoded(headers="Set-Cookie: a=b"),
    "a header of three": encoded(headers=[["a", "b", "c"]]),
    "a header name with CR LF": encoded(headers=(("X\r\nSet-Cookie", "a=b"),)),
    "a header value with CR LF": encoded(headers=(("Allow", "POST\r\nSet-Cookie: a=b"),)),
    "a header value not ASCII": encoded(headers=(("Allow", "POST\u2028"),)),
}


@pytest.fixture
async def state(redis_server: RedisServer) -> AsyncIterator[RedisState]:
    made = RedisState(redis_server.url, key=StateKey())
    yield made
    await made.close()


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
async def test_an_entry_the_gateway_did_not_write_is_503_until_it_expires(
        state: RedisState, garbage: bytes, caplog: pytest.LogCaptureFixture) -> None:
    store = RedisIdempotencyStore(state, window=120, lease=30)
    assert await store.claim(KEY, b"fp") is None
    await store.finish(KEY, StoredAnswer(201, b"{}"))
    await state.client.hset(state.name("idem", *KEY), "answer", garbage)  # type: ignore[misc]
    for _ in range(2):  # every retry: the same clear answer
        with pytest.raises(StateUnavailable) as caught:
            await store.claim(KEY, b"fp")
        assert caught.value.code == "stored_answer_unreadable"
        assert 60 < (caught.value.retry_after or 0) <= 120  # when the entry expires
    assert "cannot be read" in caplog.text


async def test_a_claim_without_expiry_is_refused_not_waited_on_forever(
        state: RedisState) -> None:
    store = RedisIdempotencyStore(state, window=60, lease=0.3)
    entry = state.name("idem", *KEY)
    await state.client.hset(entry, mapping={"fp": b"fp", "owner": b"x"})  # type: ignore[misc]
    try:
        with pytest.raises(StateUnavailable) as caught:
            await asyncio.wait_for(store.claim(KEY, b"fp"), 5)
        assert caught.value.code == "stored_answer_unreadable"
    finally:
        await state.client.delete(entry)  # every key the gateway writes expires


async def test_a_stored_header_outside_the_allow_list_is_read_but_never_replayed(
        state: RedisState) -> None:
    store = RedisIdempotencyStore(state, window=60, lease=30)
    assert await store.claim(KEY, b"fp") is None
    await store.finish(KEY, StoredAnswer(201, b"{}"))
    await state.client.hset(state.name("idem", *KEY), "answer",  # type: ignore[misc]
                            encoded(headers=(("Set-Cookie", "a=b"), ("retry-after", "3"))))
    answer = await store.claim(KEY, b"fp")
    assert answer is not None and answer.replayed_headers() == {"retry-after": "3"}


async def test_failure_times_from_the_future_never_lock_beyond_the_window(
        state: RedisState) -> None:
    throttle = RedisLoginThrottle(state, window=60, pair_limit=1, address_limit=100,
                                  account_limit=100)
    pair = state.name("fail-pair", "a@x", "10.9.9.9")
    await state.client.zadd(pair, {"forged": 10**15})
    await state.client.pexpire(pair, 60_000)
    with pytest.raises(TooManyRequests) as caught:
        await throttle.begin("a@x", "10.9.9.9", b"p")
    assert 1 <= (caught.value.retry_after or 0) <= 60


async def test_keys_of_the_wrong_type_are_state_errors_not_500s(state: RedisState) -> None:
    store = RedisIdempotencyStore(state, window=60, lease=30)
    throttle = RedisLoginThrottle(state, window=60, pair_limit=5, address_limit=5,
                                  account_limit=5)
    await state.client.set(state.name("idem", *KEY), b"a string", px=60_000)
    await state.client.hset(state.name("good", "a@x"), "x", "y")  # type: ignore[misc]
    await state.client.pexpire(state.name("good", "a@x"), 60_000)
    with pytest.raises(StateUnavailable):
        await store.claim(KEY, b"fp")
    with pytest.raises(StateUnavailable):
        await throttle.begin("a@x", "10.9.9.9", b"p")


# end to end: a gateway on Redis, the real Prosody -------------------------------------


async def _entry(state: RedisState) -> str:
    """The one Idempotency-Key entry in the test's own Redis database."""
    names = [name.decode() async for name in state.client.scan_iter("xmpp-post:idem:*")
             if not name.endswith(b":wake")]
    assert len(names) == 1, names
    return str(names[0])


@pytest.fixture
async def own_db(redis_server: RedisServer) -> AsyncIterator[RedisState]:
    """A Redis database of this test's own, emptied (to find the gateway's entry)."""
    made = RedisState(redis_server.url.rsplit("/", 1)[0] + "/5", key=StateKey())
    await made.client.flushdb()
    yield made
    await made.client.flushdb()
    await made.close()


async def test_a_retry_meets_a_corrupt_or_hostile_entry_without_a_500_or_a_second_message(
        start_gateway: GatewayFactory, account: AccountFactory, receiver: ReceiverFactory,
        http: Client, own_db: RedisState, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    url = own_db.client.connection_pool.connection_kwargs
    gateway = await start_gateway(
        redis_url=f"redis://{url['host']}:{url['port']}/5",
        state_secret_file=str(secret_file(tmp_path)))
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    key = {"Idempotency-Key": "nightly"}
    first = await http.post(gateway, f"/msg/{bob.local}", "once", sender=alice, headers=key)
    assert first.status == 201, first.text
    assert (await inbox.next()).body == "once"
    entry = await _entry(own_db)
    await own_db.client.hset(entry, "answer", b'{"s": 201, "b": 7')  # type: ignore[misc]
    with caplog.at_level(logging.ERROR):
        again = await http.post(gateway, f"/msg/{bob.local}", "once", sender=alice,
                                headers=key)
    assert (again.status, again.json["error"]) == (503, "stored_answer_unreadable"), again.text
    assert int(again.headers["Retry-After"]) > 60
    assert "cannot be read" in caplog.text
    # A well-formed entry carrying headers the gateway never stores: they stay behind.
    hostile = encoded(body=base64.b64encode(first.text.encode()).decode(), headers=(
        ("Set-Cookie", "session=stolen"), ("Location", "https://evil.example/"),
        ("Access-Control-Allow-Origin", "*"), ("Retry-After", "3")))
    await own_db.client.hset(entry, "answer", hostile)  # type: ignore[misc]
    again = await http.post(gateway, f"/msg/{bob.local}", "once", sender=alice, headers=key)
    assert again.status == 201 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert not {"Set-Cookie", "Location", "Access-Control-Allow-Origin"} & set(again.headers)
    assert again.headers["Retry-After"] == "3"
    assert inbox.pending() == []  # sent once, whatever Redis held
