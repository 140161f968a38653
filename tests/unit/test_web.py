"""The HTTP layer with the XMPP side faked: routing, auth, the one error shape."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from xmpp_post import config
from xmpp_post.errors import AckTimeout, LoginRefused, RecipientRefused, XmppUnavailable
from xmpp_post.model import OutgoingMessage, Receipt, Sender
from xmpp_post.service import web_app
from xmpp_post.testing import FakeRelay


async def _abc(sender: Sender, message: OutgoingMessage) -> Receipt:
    return Receipt(id="abc", sender=sender.jid, to=message.to, type=message.type)


AUTH = {"Authorization": "Basic " + base64.b64encode(b"alice:pw").decode(),
        "Content-Type": "text/plain"}


@pytest.fixture
def relay() -> FakeRelay:
    return FakeRelay(_abc)


@pytest.fixture
async def client(relay: FakeRelay) -> AsyncIterator[TestClient[aiohttp.web.Request,
                                                               aiohttp.web.Application]]:
    cfg = config.load({"domain": ["example.org"], "max_body": "100", "base_path": "/api/msg"},
                      environ={})
    async with TestClient(TestServer(web_app(cfg, relay))) as test_client:
        yield test_client


Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]


async def test_success_shape(client: Client, relay: FakeRelay) -> None:
    resp = await client.post("/api/msg/bob", data="hi", headers=AUTH)
    assert resp.status == 201
    assert await resp.json() == {"id": "abc", "from": "alice@example.org",
                                 "to": "bob@example.org", "type": "chat"}
    sent = relay.sent[0][1]
    assert (sent.to, sent.body, sent.type) == ("bob@example.org", "hi", "chat")


async def test_error_shape_is_pinned(client: Client, relay: FakeRelay) -> None:
    resp = await client.post("/api/msg/bob", data="hi")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == \
        'Basic realm="xmpp-post", charset="UTF-8", Bearer realm="xmpp-post"'
    assert await resp.json() == {
        "error": "unauthorized",
        "message": "credentials are required: HTTP Basic (user@domain:password) or a "
                   "Bearer token"}
    assert relay.sent == []


async def test_body_limit(client: Client, relay: FakeRelay) -> None:
    resp = await client.post("/api/msg/bob", data="x" * 101, headers=AUTH)
    assert resp.status == 413 and (await resp.json())["error"] == "payload_too_large"
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: checked while reading
        for _ in range(3):
            yield b"x" * 60

    resp = await client.post("/api/msg/bob", data=chunks(), headers=AUTH)
    assert resp.status == 413 and (await resp.json())["error"] == "payload_too_large"
    assert relay.sent == []


@pytest.mark.parametrize(("error", "status", "retry"), [
    (XmppUnavailable("down", retry_after=7), 503, "7"),
    (AckTimeout("slow"), 504, "5"),
])
async def test_upstream_errors(client: Client, relay: FakeRelay, error: Exception,
                               status: int, retry: str | None) -> None:
    relay.fail = error
    resp = await client.post("/api/msg/bob", data="hi", headers=AUTH)
    assert resp.status == status
    assert resp.headers.get("Retry-After") == retry
    assert set(await resp.json()) == {"error", "message"}


async def test_unexpected_failure_is_a_json_500(client: Client, relay: FakeRelay) -> None:
    relay.fail = RuntimeError("bug")
    resp = await client.post("/api/msg/bob", data="hi", headers=AUTH)
    assert resp.status == 500
    assert await resp.json() == {"error": "internal_error",
                                 "message": "the gateway failed unexpectedly"}


async def test_routes(client: Client) -> None:
    resp = await client.options("/api/msg")
    assert resp.status == 200 and resp.headers["Allow"] == "POST, OPTIONS"
    resp = await client.put("/api/msg/bob", data="x", headers=AUTH)
    assert resp.status == 405 and resp.headers["Allow"] == "OPTIONS, POST"
    resp = await client.post("/msg/bob", data="x", headers=AUTH)
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await client.get("/healthz")
    assert resp.status == 200


async def test_a_refused_login_fails_a_request_to_several_recipients(
        client: Client, relay: FakeRelay) -> None:
    # The sender's failure, not a recipient's: 401 (not 207), and the throttle counts it.
    relay.fail = LoginRefused("not authorized", condition="not-authorized")
    for _ in range(5):
        resp = await client.post("/api/msg/bob,carol", data="hi", headers=AUTH)
        assert resp.status == 401 and (await resp.json())["error"] == "invalid_credentials"
    calls = relay.calls
    resp = await client.post("/api/msg/bob,carol", data="hi", headers=AUTH)
    assert resp.status == 429 and relay.calls == calls


def auth_for(password: str) -> dict[str, str]:
    token = base64.b64encode(f"alice:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "text/plain"}


async def test_idempotency_stores_only_answers_given_after_the_login(
        client: Client, relay: FakeRelay) -> None:
    key = {"Idempotency-Key": "k1"}
    # A parse error comes before any login: not stored, whoever sent it.
    resp = await client.post("/api/msg/bob", data="", headers={**AUTH, **key})
    assert resp.status == 422
    resp = await client.post("/api/msg/bob", data="hi", headers={**AUTH, **key})
    assert resp.status == 201 and "Idempotent-Replayed" not in resp.headers
    # A refusal once logged in is final: stored and replayed, the relay asked once.
    relay.fail = RecipientRefused("refused", code="recipient_unavailable",
                                  condition="service-unavailable")
    key = {"Idempotency-Key": "k2"}
    for replayed in (False, True):
        resp = await client.post("/api/msg/nobody", data="hi", headers={**AUTH, **key})
        assert resp.status == 404
        assert ("Idempotent-Replayed" in resp.headers) == replayed
    assert relay.calls == 2
    # A refused login is never stored; another password is another scope.
    relay.fail = LoginRefused("no")
    resp = await client.post("/api/msg/nobody", data="hi", headers={**auth_for("x"), **key})
    assert resp.status == 401 and "Idempotent-Replayed" not in resp.headers


async def test_two_idempotency_keys_are_refused(client: Client) -> None:
    headers = CIMultiDict(AUTH)
    headers.add("Idempotency-Key", "a")
    headers.add("Idempotency-Key", "b")
    resp = await client.post("/api/msg/bob", data="hi", headers=headers)
    assert resp.status == 400 and (await resp.json())["error"] == "duplicate_header"
