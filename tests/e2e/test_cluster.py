"""Several gateways sharing their state in a real Redis, against the real Prosody: a retry
on another instance, guesses spread over the instances, Redis going away and back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.helpers import Account, AccountFactory, Client, ReceiverFactory
from tests.helpers.cluster import post, secret_file, shared_gateways
from tests.helpers.faults import client_from
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.redis_server import RedisServer

KEY = "Idempotency-Key"


async def test_an_idempotent_retry_on_another_instance_is_answered_from_the_first(
        prosody: ProsodyServer, redis_server: RedisServer, tmp_path: Path, http: Client,
        account: AccountFactory, receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    async with shared_gateways(prosody, 3, redis_server.url, secret_file(tmp_path)) as gws:
        first = await post(http, gws[0].url, f"/msg/{bob.local}", "once", alice, {KEY: "k1"})
        again = await post(http, gws[1].url, f"/msg/{bob.local}", "once", alice, {KEY: "k1"})
        assert first.status == again.status == 201, again.text
        assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
        # Duplicates arriving at the same time at every instance: one is sent.
        burst = await asyncio.gather(*(
            post(http, gw.url, f"/msg/{bob.local}", "burst", alice, {KEY: "k2"})
            for gw in gws for _ in range(3)))
        assert {r.status for r in burst} == {201} and len({r.json["id"] for r in burst}) == 1
        changed = await post(http, gws[2].url, f"/msg/{bob.local}", "other", alice,
                             {KEY: "k1"})
        assert changed.status == 422 and changed.json["error"] == "idempotency_key_reused"
        marker = await post(http, gws[1].url, f"/msg/{bob.local}", "marker", alice)
        assert marker.status == 201
    assert [m.body for m in await inbox.collect(2)] == ["once", "burst"]
    assert (await inbox.next()).body == "marker"  # nothing was sent twice before it


async def test_guesses_spread_over_instances_hit_429_at_the_same_count_as_against_one(
        prosody: ProsodyServer, redis_server: RedisServer, tmp_path: Path, http: Client,
        account: AccountFactory) -> None:
    alice, bob = account("alice"), account("bob")

    async def statuses(urls: list[str], address: str) -> list[int]:
        async with client_from(address) as attacker:
            return [(await post(attacker, urls[n % len(urls)], f"/msg/{bob.local}", "x",
                                Account(alice.jid, f"guess {n}"))).status
                    for n in range(5)]

    async with shared_gateways(prosody, 3, redis_server.url, secret_file(tmp_path),
                               auth_failure_limit="3") as gws:
        spread = await statuses([gw.url for gw in gws], "127.0.0.21")
        single = await statuses([gws[0].url], "127.0.0.22")
        owner = await post(http, gws[1].url, f"/msg/{bob.local}", "it is me", alice)
    assert spread == single == [401, 401, 401, 429, 429]
    assert owner.status == 201  # from another address, with the right password


async def test_redis_down_503_for_what_needs_it_and_recovery_by_itself(
        prosody: ProsodyServer, tmp_path: Path, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, carol, bob = account("alice"), account("carol"), account("bob")
    inbox = await receiver(bob)
    with RedisServer() as redis:
        async with shared_gateways(prosody, 2, redis.url, secret_file(tmp_path),
                                   retry_after="3") as (gw, other):
            assert (await post(http, gw.url, f"/msg/{bob.local}", "before", alice)).status == 201
            redis.stop()
            ready = await http.request("GET", gw.url + "/readyz")
            assert ready.status == 200 and ready.json["status"] == "degraded"
            assert "Redis" in ready.json["reason"]
            # alice's session is open and her password proven: she can still send ...
            reply = await post(http, gw.url, f"/msg/{bob.local}", "during", alice)
            assert reply.status == 201, reply.text
            # ... but not with an Idempotency-Key (nobody could keep the promise),
            # nor anyone who would have to log in (the throttle cannot count).
            for reply in (
                    await post(http, gw.url, f"/msg/{bob.local}", "keyed", alice, {KEY: "k"}),
                    await post(http, gw.url, f"/msg/{bob.local}", "new", carol),
                    await post(http, other.url, f"/msg/{bob.local}", "new", alice)):
                assert reply.status == 503, reply.text
                assert reply.json["error"] == "state_unavailable"
                assert reply.headers["Retry-After"] == "3"
            redis.start()
            ready = await http.request("GET", gw.url + "/readyz")
            assert ready.json == {"status": "ready"}
            for url, sender, body in ((gw.url, carol, "after 1"), (other.url, alice, "after 2")):
                reply = await post(http, url, f"/msg/{bob.local}", body, sender, {KEY: body})
                assert reply.status == 201, reply.text
    bodies = [m.body for m in await inbox.collect(4)]
    assert bodies == ["before", "during", "after 1", "after 2"]
