"""ntfy's publish routes on the real web application, the XMPP side faked: routing
around the gateway's own paths, the guards, ?auth=, [topics], answers and error shapes."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from xmpp_post import config
from xmpp_post.cli import EXIT_CONFIG, main
from xmpp_post.errors import (
    ConfigError,
    LoginRefused,
    RoomRefused,
    XmppUnavailable,
)
from xmpp_post.fronts.ntfy import reserved_names
from xmpp_post.fronts.ntfy.ntfy_routes import TopicResource
from xmpp_post.model import OutgoingMessage, Receipt, Sender
from xmpp_post.service import web_app
from xmpp_post.testing import FakeRelay

Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]
BASIC = "Basic " + base64.b64encode(b"alice:pw").decode()
AUTH = {"Authorization": BASIC}


def load(tmp_path: Path, toml: str = "", **flags: Any) -> config.Config:
    path = tmp_path / "gateway.toml"
    path.write_text('domain = ["example.org"]\n' + toml)
    return config.load(flags, environ={}, config_file=path)


@pytest.fixture
def relay() -> FakeRelay:
    return FakeRelay()


@pytest.fixture
async def client(relay: FakeRelay, tmp_path: Path) -> AsyncIterator[Client]:
    cfg = load(tmp_path, '[topics]\nops = ["ops@rooms.example.org", "carol@example.org"]\n')
    async with TestClient(TestServer(web_app(cfg, relay))) as test_client:
        yield test_client


# --- routing ----------------------------------------------------------------------------

def test_every_route_of_the_gateway_is_a_reserved_name(tmp_path: Path) -> None:
    for base in ("/msg", "/api/v2/send"):
        cfg = load(tmp_path, base_path=base)
        app = web_app(cfg, FakeRelay())
        reserved = reserved_names(base)
        for resource in app.router.resources():
            first = resource.canonical.split("/")[1]
            if isinstance(resource, TopicResource) or resource.canonical == "/":
                continue
            assert first.lower() in reserved or "." in first, resource.canonical


async def test_the_gateways_own_paths_answer_as_without_ntfy(client: Client) -> None:
    resp = await client.post("/healthz", headers=AUTH)
    assert resp.status == 405 and "GET" in resp.headers["Allow"]
    assert set(await resp.json()) == {"error", "message"}
    resp = await client.put("/msg", data="x", headers=AUTH)
    assert resp.status == 405 and resp.headers["Allow"] == "OPTIONS, POST"
    resp = await client.post("/Metrics", data="x", headers=AUTH)  # names ignore case
    assert resp.status == 404 and set(await resp.json()) == {"error", "message"}
    for path in ("/v1", "/hooks", "/a/b/c", "/x/unknown", "/" + "x" * 65):
        resp = await client.post(path, data="x", headers=AUTH)
        assert resp.status == 404, path
        assert set(await resp.json()) == {"error", "message"}


async def test_other_methods_are_405_in_ntfys_shape(client: Client,
                                                    relay: FakeRelay) -> None:
    for method, path, allow in [("GET", "/mytopic", "OPTIONS, POST, PUT"),
                                ("DELETE", "/", "OPTIONS, POST, PUT"),
                                ("PUT", "/mytopic/publish", "GET, OPTIONS, POST"),
                                ("HEAD", "/mytopic", "OPTIONS, POST, PUT")]:
        resp = await client.request(method, path, headers=AUTH)
        assert resp.status == 405, (method, path)
        assert resp.headers["Allow"] == allow
        if method != "HEAD":
            assert await resp.json() == {
                "error": "method_not_allowed", "http": 405, "code": 40501,
                "message": f"method {method} is not allowed here; use {allow}"}
    resp = await client.options("/mytopic/send")  # no credentials needed, nothing sent
    assert resp.status == 200 and resp.headers["Allow"] == "GET, OPTIONS, POST"
    assert "title" in (await resp.json())["parameters"]
    assert relay.calls == 0


async def test_ntfy_off_and_base_path_at_the_root(tmp_path: Path,
                                                  relay: FakeRelay) -> None:
    cfg = load(tmp_path, ntfy=False)
    async with TestClient(TestServer(web_app(cfg, relay))) as off:
        resp = await off.post("/mytopic", data="x", headers=AUTH)
        assert resp.status == 404
    with pytest.raises(ConfigError) as info:
        load(tmp_path, base_path="/")
    assert info.value.setting == "ntfy" and "ntfy = false" in info.value.problem
    assert not load(tmp_path, base_path="/", ntfy=False).ntfy
    assert main(["serve", "--domain", "a.example", "--base-path", "/"]) == EXIT_CONFIG


@pytest.mark.parametrize(("toml", "setting"), [
    ('[topics]\nmsg = ["a@example.org"]\n', "topics"),  # the base path's segment
    ('[topics]\nHealthz = ["a@example.org"]\n', "topics"),
    ('[topics]\nops = "a@example.org"\n', "topics"),
    ('[topics]\nops = ["not a jid"]\n', "topics"),
    ("ntfy_max_text = 0\n", "ntfy_max_text"),
])
def test_bad_ntfy_configuration_names_the_setting(tmp_path: Path, toml: str,
                                                  setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml)
    assert info.value.setting == setting


def test_the_base_paths_segment_is_free_under_another_base_path(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[topics]\nmsg = ["a@example.org"]\n', base_path="/api/msg")
    assert cfg.sections.get("topics") == {"msg": ("a@example.org",)}


# --- publishing ---------------------------------------------------------------------------

async def test_one_message_per_recipient_with_the_replys_id(client: Client,
                                                            relay: FakeRelay) -> None:
    resp = await client.put("/OPS", data="disk full", headers={**AUTH, "Title": "db1"})
    assert resp.status == 200
    reply = await resp.json()
    assert reply["topic"] == "OPS" and reply["title"] == "db1"
    sent = {message.to: message for _, message in relay.sent}
    assert set(sent) == {"ops@rooms.example.org", "carol@example.org"}
    for message in sent.values():
        assert (message.id, message.subject, message.subject_in_rooms) == (
            reply["id"], "db1", False)
        assert message.body == "*db1*\ndisk full" and not message.explicit_type
        assert message.nick == "alice"


async def test_several_recipients_answer_the_first_failure_with_results(
        client: Client, relay: FakeRelay) -> None:
    async def deliver(sender: Sender, message: OutgoingMessage) -> Receipt:
        if message.to.startswith("ops@"):
            raise RoomRefused("the room does not exist", code="room_not_found",
                              condition="item-not-found")
        return Receipt(id=message.id or "", sender=sender.jid, to=message.to, type="chat")

    relay.handler = deliver
    resp = await client.post("/ops", data="x", headers=AUTH)
    assert resp.status == 404
    body = await resp.json()
    assert (body["error"], body["http"], body["code"]) == ("room_not_found", 404, 40400)
    assert body["results"] == [
        {"to": "ops@rooms.example.org", "status": 404, "error": "room_not_found",
         "message": "the room does not exist"},
        {"status": 200, "id": relay.sent[0][1].id, "from": "alice@example.org",
         "to": "carol@example.org", "type": "chat"}]


async def test_one_recipients_error_keeps_its_headers(client: Client,
                                                      relay: FakeRelay) -> None:
    relay.fail = XmppUnavailable("down", retry_after=7, code="xmpp_unreachable")
    resp = await client.post("/bob", data="x", headers=AUTH)
    assert resp.status == 503 and resp.headers["Retry-After"] == "7"
    assert await resp.json() == {"error": "xmpp_unreachable", "message": "down",
                                 "http": 503, "code": 50300}


async def test_max_text_is_a_setting(tmp_path: Path, relay: FakeRelay) -> None:
    text = "é" * 3000  # 6000 bytes
    async with TestClient(TestServer(web_app(load(tmp_path), relay))) as small:
        resp = await small.post("/bob", data=text.encode(), headers=AUTH)
        assert resp.status == 200  # over ntfy_max_text: a file, as ntfy makes it
        assert (await resp.json())["attachment"]["size"] == 6000
        assert relay.uploaded[-1].name == "attachment.bin"
    cfg = load(tmp_path, ntfy_max_text="8KiB")
    async with TestClient(TestServer(web_app(cfg, relay))) as large:
        resp = await large.post("/bob", data=text.encode(), headers=AUTH)
        assert resp.status == 200 and relay.sent[-1][1].body == text


# --- guards -------------------------------------------------------------------------------

async def test_guards_apply_to_every_publishing_method(client: Client,
                                                       relay: FakeRelay) -> None:
    key = {**AUTH, "Idempotency-Key": "k1"}
    first = await client.get("/bob/publish?message=once", headers=key)
    again = await client.get("/bob/publish?message=once", headers=key)
    assert first.status == again.status == 200
    assert await first.json() == await again.json()
    assert again.headers["Idempotent-Replayed"] == "true" and relay.calls == 1
    other = await client.get("/bob/publish?message=twice", headers=key)  # the query counts
    assert other.status == 422
    assert (await other.json())["error"] == "idempotency_key_reused"
    bad = await client.put("/bob", data="x", headers={**AUTH, "Idempotency-Key": "k" * 256})
    assert bad.status == 400 and (await bad.json())["http"] == 400


async def test_failed_logins_through_ntfy_are_throttled(client: Client,
                                                        relay: FakeRelay) -> None:
    relay.fail = LoginRefused("not authorized", condition="not-authorized")
    for _ in range(5):
        resp = await client.put("/bob", data="x", headers=AUTH)
        assert resp.status == 401 and (await resp.json())["code"] == 40101
    calls = relay.calls
    resp = await client.get("/bob/trigger", headers=AUTH)
    assert resp.status == 429 and "Retry-After" in resp.headers
    assert (await resp.json())["code"] == 42909
    assert relay.calls == calls  # the server is not asked


async def test_a_body_over_max_body_is_413_in_ntfys_shape(tmp_path: Path,
                                                          relay: FakeRelay) -> None:
    cfg = load(tmp_path, max_body="100", max_file_size="5000")
    async with TestClient(TestServer(web_app(cfg, relay))) as small:
        resp = await small.post("/", data=json.dumps({"topic": "bob", "message": "x" * 80}),
                                headers=AUTH)
        assert resp.status == 413
        assert await resp.json() == {
            "error": "payload_too_large", "http": 413, "code": 41350,
            "message": "the body is 111 bytes; the limit is 100"}
        # A topic's body is text up to ntfy_max_text, else a file up to max_file_size.
        assert (await small.post("/bob", data="x" * 101, headers=AUTH)).status == 200
        resp = await small.post("/bob", data="x" * 5001, headers=AUTH)
        assert resp.status == 413
        assert (await resp.json())["error"] == "file_too_large"
        assert (await resp.json())["code"] == 41301


# --- ?auth= -------------------------------------------------------------------------------

def _param(header: str, urlsafe: bool = True, padded: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text = encode(header.encode()).decode()
    return text if padded else text.rstrip("=")


@pytest.mark.parametrize(("urlsafe", "padded"), [(True, False), (True, True),
                                                 (False, False), (False, True)])
async def test_auth_query_parameter(client: Client, relay: FakeRelay, urlsafe: bool,
                                    padded: bool) -> None:
    header = "Basic " + base64.b64encode(b"alice@example.org:pw?>>~").decode()
    resp = await client.post("/bob", data="x",
                             params={"auth": _param(header, urlsafe, padded)})
    assert resp.status == 200, await resp.text()
    sender = relay.sent[-1][0]
    assert (sender.jid, sender.password) == ("alice@example.org", "pw?>>~")


async def test_the_auth_parameter_wins_over_the_header(client: Client,
                                                       relay: FakeRelay) -> None:
    header = "Basic " + base64.b64encode(b"dave:secret").decode()
    resp = await client.post("/bob", data="x", headers=AUTH,
                             params={"authorization": _param(header)})
    assert resp.status == 200
    assert relay.sent[-1][0].jid == "dave@example.org"


@pytest.mark.parametrize(("value", "status", "error"), [
    ("!!!", 401, "invalid_auth_param"),
    (_param("Digest abc"), 401, "invalid_auth_param"),
    (_param("Bearer xpt_unknown"), 401, "invalid_credentials"),  # an unknown token
    (_param("Basic " + base64.b64encode(b"x@else.org:p").decode()), 403, "domain_not_served"),
])
async def test_bad_auth_parameters(client: Client, relay: FakeRelay, value: str, status: int,
                                   error: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    resp = await client.post("/bob", data="x", params={"auth": value})
    body = await resp.json()
    assert (resp.status, body["error"], body["http"]) == (status, error, status)
    assert value not in await resp.text()
    assert not [r for r in caplog.records  # the gateway's own logs (not the test server's)
                if r.name.startswith("xmpp_post") and value in r.getMessage()]
    if resp.status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Basic ")
    assert relay.calls == 0


async def test_metrics_name_the_route_never_the_topic(client: Client) -> None:
    await client.post("/secret-topic-name", data="x", headers=AUTH)
    text = await (await client.get("/metrics")).text()
    assert 'route="/{topic}"' in text and "secret-topic-name" not in text


async def test_a_refused_login_to_a_topic_of_several_is_one_failed_login(
        client: Client, relay: FakeRelay) -> None:
    relay.fail = LoginRefused("not authorized", condition="not-authorized")
    for _ in range(5):
        resp = await client.post("/ops", data="x", headers=AUTH)
        assert resp.status == 401 and "results" not in await resp.json()
    resp = await client.post("/ops", data="x", headers=AUTH)
    assert resp.status == 429
