"""Metrics, readiness, request ids and structured log lines, against the real server."""

from __future__ import annotations

import io
import json
import logging

import pytest

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory, metric
from xmpp_post import logs
from xmpp_post.lab.prosody import free_port
from xmpp_post.service import Gateway


async def test_metrics_count_requests_deliveries_sessions_and_failures(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    for i in range(3):
        assert (await http.post(gateway, f"/msg/{bob.local}", f"m{i}", sender=alice)).status \
            == 201
    await inbox.collect(3)
    assert (await http.post(gateway, f"/msg/{bob.local}", "x", user=alice.jid,
                            password="wrong")).status == 401
    reply = await http.request("GET", gateway.url + "/metrics")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    text = reply.text
    assert metric(text, "xmpp_post_http_requests_total", route="/msg/{recipient}",
                  method="POST", status="201") == 3
    assert metric(text, "xmpp_post_http_requests_total", status="401") == 1
    assert metric(text, "xmpp_post_delivery_seconds_count") == 3
    assert metric(text, "xmpp_post_sessions_open") == 1
    assert metric(text, "xmpp_post_session_opens_total") == 1
    assert metric(text, "xmpp_post_session_open_failures_total",
                  reason="invalid_credentials") == 1
    for name in ("xmpp_post_ack_timeouts_total", "xmpp_post_rate_limited_total"):
        assert f"# TYPE {name} counter" in text


async def test_rate_limit_rejections_are_counted(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory) -> None:
    gateway = await start_gateway(auth_failure_limit="2")
    alice = account("alice")
    statuses = [(await http.post(gateway, "/msg/bob", "x", user=alice.jid,
                                 password="guess")).status for _ in range(4)]
    assert statuses == [401, 401, 429, 429]
    text = (await http.request("GET", gateway.url + "/metrics")).text
    assert metric(text, "xmpp_post_rate_limited_total") == 2


async def test_readiness_follows_the_xmpp_server_and_the_lifecycle(
        start_gateway: GatewayFactory, http: Client) -> None:
    ready = await start_gateway()
    reply = await http.request("GET", ready.url + "/readyz")
    assert reply.status == 200 and reply.json == {"status": "ready"}
    cut_off = await start_gateway(xmpp_server=f"127.0.0.1:{free_port()}")
    reply = await http.request("GET", cut_off.url + "/readyz")
    assert reply.status == 503 and reply.json["status"] == "not_ready"
    assert "unreachable" in reply.json["reason"]
    assert (await http.request("GET", cut_off.url + "/healthz")).status == 200
    assert await ready.readiness() is None
    await ready.stop()
    assert await ready.readiness() is not None


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_request_ids_are_returned_and_logged(
        fmt: str, gateway: Gateway, http: Client, account: AccountFactory) -> None:
    alice = account("alice")
    stream = io.StringIO()
    out = logs.handler(stream, fmt)
    web_log = logging.getLogger("xmpp_post.http.app")
    web_log.addHandler(out)
    web_log.setLevel(logging.INFO)
    try:
        mine = await http.post(gateway, "/msg", "no recipient", sender=alice,
                               headers={"X-Request-Id": "ci-run-42.step-7"})
        fresh = await http.post(gateway, "/msg", "x", sender=alice,
                                headers={"X-Request-Id": "not ok \u00e9" * 20})
    finally:
        web_log.removeHandler(out)
    assert mine.status == 422 and mine.headers["X-Request-Id"] == "ci-run-42.step-7"
    generated = fresh.headers["X-Request-Id"]
    assert len(generated) == 16 and "not ok" not in generated
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    if fmt == "json":
        first, second = (json.loads(line) for line in lines)
        assert first["event"] == "request" and first["request_id"] == "ci-run-42.step-7"
        assert (first["status"], first["error"], first["sender"], first["route"]) == \
            (422, "missing_recipient", alice.jid, "/msg")
        assert second["request_id"] == generated
    else:
        assert "[ci-run-42.step-7] request " in lines[0] and "status=422" in lines[0]
        assert f"[{generated}] request " in lines[1]
    assert alice.password not in stream.getvalue()
