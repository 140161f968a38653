"""The guards (throttle, idempotency, limits) through the real web application, with the
XMPP side faked by ``xmpp_post.testing.FakeRelay``: fast, and nothing started."""

from __future__ import annotations

import asyncio
import base64

from tests.helpers import MakeClient
from xmpp_post.errors import LoginRefused
from xmpp_post.model import OutgoingMessage, Receipt, Sender

PASSWORDS = {"alice@example.org": "right"}


def auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "text/plain"}


async def checks_password(sender: Sender, message: OutgoingMessage) -> Receipt:
    """Stands in for the XMPP server's SASL check."""
    if PASSWORDS.get(sender.jid) != sender.password:
        raise LoginRefused("the XMPP server rejected the credentials")
    return Receipt(id=f"id-{message.body}", sender=sender.jid, to=message.to, type="chat")




async def test_throttle_refuses_guesses_before_they_reach_the_server(
        make_client: MakeClient) -> None:
    client, relay = await make_client(checks_password, auth_failure_limit="3")
    for _ in range(3):
        resp = await client.post("/msg/bob", data="x", headers=auth("alice", "guess"))
        assert resp.status == 401 and (await resp.json())["error"] == "invalid_credentials"
    calls = relay.calls
    resp = await client.post("/msg/bob", data="x", headers=auth("alice", "guess"))
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert relay.calls == calls  # refused without asking the server
    resp = await client.post("/msg/bob", data="x", headers=auth("alice", "right"))
    assert resp.status == 429  # the pair (account, address) is locked for the window


async def test_idempotent_retry_is_answered_not_sent_again(make_client: MakeClient) -> None:
    client, relay = await make_client(checks_password)
    headers = {**auth("alice", "right"), "Idempotency-Key": "k-1"}
    first = await client.post("/msg/bob", data="once", headers=headers)
    again = await client.post("/msg/bob", data="once", headers=headers)
    assert first.status == again.status == 201
    assert await first.json() == await again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(relay.sent) == 1
    other = await client.post("/msg/bob", data="different", headers=headers)
    assert other.status == 422 and (await other.json())["error"] == "idempotency_key_reused"
    bad = await client.post("/msg/bob", data="x", headers={**headers, "Idempotency-Key": ""})
    assert bad.status == 400 and (await bad.json())["error"] == "invalid_idempotency_key"


async def test_concurrent_duplicates_are_sent_once(make_client: MakeClient) -> None:
    client, relay = await make_client(checks_password)
    gate = asyncio.Event()

    async def slow(sender: Sender, message: OutgoingMessage) -> Receipt:
        await gate.wait()
        return await checks_password(sender, message)

    relay.handler = slow
    headers = {**auth("alice", "right"), "Idempotency-Key": "k-2"}
    posts = [asyncio.ensure_future(client.post("/msg/bob", data="m", headers=headers))
             for _ in range(5)]
    await relay.wait_calls(1)
    gate.set()
    replies = await asyncio.gather(*posts)
    assert {r.status for r in replies} == {201} and relay.calls == 1


async def test_limits_refuse_beyond_the_concurrency_cap(make_client: MakeClient) -> None:
    client, relay = await make_client(checks_password, max_concurrent_requests="2")
    gate = asyncio.Event()

    async def held(sender: Sender, message: OutgoingMessage) -> Receipt:
        await gate.wait()
        return await checks_password(sender, message)

    relay.handler = held
    posts = [asyncio.ensure_future(client.post("/msg/bob", data=f"m{i}",
                                               headers=auth("alice", "right")))
             for i in range(2)]
    await relay.wait_calls(2)
    busy = await client.post("/msg/bob", data="m3", headers=auth("alice", "right"))
    assert busy.status == 503 and (await busy.json())["error"] == "busy"
    assert busy.headers["Retry-After"] == "5"
    gate.set()
    assert [r.status for r in await asyncio.gather(*posts)] == [201, 201]


async def test_body_limit_and_media_type(make_client: MakeClient) -> None:
    client, relay = await make_client(checks_password, max_body="10")
    resp = await client.post("/msg/bob", data="x" * 11, headers=auth("alice", "right"))
    assert resp.status == 413
    resp = await client.post("/msg/bob", data="x", headers={**auth("alice", "right"),
                                                            "Content-Type": "image/png"})
    assert resp.status == 415 and relay.calls == 0
