"""End to end: a real Prosody, the gateway, and a real client that receives."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

import pytest

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory
from tests.helpers.faults import nothing_else_arrived
from xmpp_post.lab.prosody import ProsodyServer, free_port
from xmpp_post.service import Gateway

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


async def test_text_plain_is_delivered_as_the_sender(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    reply = await http.post(gateway, f"/msg/{bob.local}", "Server@host has just crashed!",
                            sender=alice)
    assert reply.status == 201, reply.text
    body = reply.json
    assert body["from"] == alice.jid and body["to"] == bob.jid and body["type"] == "chat"
    got = await inbox.next()
    assert got.body == "Server@host has just crashed!"
    assert got.sender.startswith(alice.jid + "/")
    assert got.id == body["id"] and got.type == "chat"


async def test_form_and_json_payloads_with_type(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    form = urlencode({"to": bob.jid, "type": "normal", "body": "from a form & co"})
    reply = await http.post(gateway, "/msg", form, sender=alice, content_type=FORM)
    assert reply.status == 201, reply.text
    got = await inbox.next()
    assert (got.body, got.type) == ("from a form & co", "normal")
    doc = json.dumps({"to": bob.local, "type": "headline", "body": "from JSON"})
    reply = await http.post(gateway, "/msg", doc, sender=alice,
                            content_type="application/json; charset=utf-8")
    assert reply.status == 201, reply.text
    got = await inbox.next()
    assert (got.body, got.type) == ("from JSON", "headline")


async def test_user_without_domain_means_the_first_domain(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    reply = await http.post(gateway, f"/msg/{bob.jid}", "short name", user=alice.local,
                            password=alice.password)
    assert reply.status == 201, reply.text
    assert reply.json["from"] == alice.jid
    assert (await inbox.next()).body == "short name"


async def test_full_jid_recipient_reaches_that_resource(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    desk = await receiver(bob, resource="desk")
    phone = await receiver(bob, resource="phone")
    reply = await http.post(gateway, f"/msg/{bob.jid}/phone", "to the phone", sender=alice)
    assert reply.status == 201, reply.text
    assert reply.json["to"] == f"{bob.jid}/phone"
    assert (await phone.next()).body == "to the phone"
    await nothing_else_arrived(http, gateway, alice, desk, f"{bob.jid}/desk")


@pytest.mark.parametrize("text", [
    "Grüße, Здравствуйте, こんにちは, 🚀🔥 and a zero-width joiner: 👩‍💻",
    "</body><body>injected</body><subject>x</subject>",
    "]]><![CDATA[ <message to='eve@localhost'><body>pwned</body></message>",
    "&amp; &lt; &#x41; ' \" <!-- comment --> <?pi?>",
    "tabs\tnew\nlines\r\nand carriage returns",
])
async def test_text_arrives_exactly_as_sent(
        text: str, gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    for content_type, payload in (
            ("text/plain; charset=utf-8", text.encode()),
            (FORM, urlencode({"body": text}).encode()),
            (JSON, json.dumps({"body": text}).encode())):
        reply = await http.post(gateway, f"/msg/{bob.local}", payload, sender=alice,
                                content_type=content_type)
        assert reply.status == 201, reply.text
        got = await inbox.next()
        assert got.body == text.replace("\r\n", "\n") or got.body == text
        assert "<body>pwned</body>" not in got.xml and "injected</body>" not in got.xml


async def test_control_characters_are_refused_and_the_session_still_works(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    assert (await http.post(gateway, f"/msg/{bob.local}", "warm up", sender=alice)).status == 201
    await inbox.next()
    for bad in ("bell \x07", "nul \x00 byte", "escape \x1b[31m", "\ufffe"):
        for content_type, payload in (("text/plain", bad),
                                      (JSON, json.dumps({"body": bad})),
                                      (FORM, urlencode({"body": bad}))):
            reply = await http.post(gateway, f"/msg/{bob.local}", payload, sender=alice,
                                    content_type=content_type)
            assert reply.status == 400, (bad, content_type, reply.text)
            assert reply.json["error"] == "invalid_character"
    reply = await http.post(gateway, f"/msg/{bob.local}", "still here", sender=alice)
    assert reply.status == 201
    assert (await inbox.next()).body == "still here"
    assert inbox.pending() == []


async def test_error_codes(gateway: Gateway, http: Client, account: AccountFactory) -> None:
    alice, bob = account("alice"), account("bob")
    cases: list[tuple[str, dict[str, object], int, str]] = [
        ("no credentials", {"path": f"/msg/{bob.local}", "data": "x"}, 401, "unauthorized"),
        ("wrong password", {"path": f"/msg/{bob.local}", "data": "x", "password": "nope"},
         401, "invalid_credentials"),
        ("other domain", {"path": f"/msg/{bob.local}", "data": "x",
                          "user": "mallory@example.net"}, 403, "domain_not_served"),
        ("bad json", {"path": "/msg/x", "data": "{nope", "content_type": JSON}, 400,
         "invalid_json"),
        ("bad jid", {"path": "/msg/a@b@c", "data": "x"}, 400, "invalid_jid"),
        ("bad type", {"path": "/msg", "data": json.dumps({"to": "x", "type": "error",
                                                          "body": "y"}),
                      "content_type": JSON}, 400, "invalid_type"),
        ("sender field", {"path": "/msg", "data": json.dumps({"to": "x", "from": "eve@x",
                                                              "body": "y"}),
                          "content_type": JSON}, 400, "sender_field"),
        ("unsupported type", {"path": "/msg/x", "data": "<a/>", "content_type": "text/xml"},
         415, "unsupported_media_type"),
        ("no content type", {"path": "/msg/x", "data": "x", "content_type": None}, 415,
         "unsupported_media_type"),
        ("too large", {"path": "/msg/x", "data": "x" * (64 * 1024 + 1)}, 413,
         "payload_too_large"),
        ("no recipient", {"path": "/msg", "data": "x"}, 422, "missing_recipient"),
        ("no text", {"path": "/msg/x", "data": ""}, 422, "missing_body"),
        ("blank text", {"path": "/msg", "data": json.dumps({"to": "x", "body": "  \n"}),
                        "content_type": JSON}, 422, "missing_body"),
    ]
    for name, case, status, code in cases:
        kwargs = dict(case)
        path, data = str(kwargs.pop("path")), kwargs.pop("data")
        if name != "no credentials":
            kwargs.setdefault("user", alice.jid)
            kwargs.setdefault("password", alice.password)
        reply = await http.post(gateway, path, data, **kwargs)  # type: ignore[arg-type]
        assert reply.status == status, (name, reply.text)
        assert reply.headers["Content-Type"].startswith("application/json"), name
        assert set(reply.json) == {"error", "message"}, name
        assert reply.json["error"] == code, (name, reply.json)
        if status == 401:
            assert reply.headers["WWW-Authenticate"].startswith("Basic realm="), name


async def test_unreachable_server_is_503_with_retry_after(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory) -> None:
    gateway = await start_gateway(xmpp_server=f"127.0.0.1:{free_port()}")
    alice = account("alice")
    reply = await http.post(gateway, "/msg/bob", "hello?", sender=alice)
    assert reply.status == 503, reply.text
    assert reply.json["error"] == "xmpp_unreachable"
    assert int(reply.headers["Retry-After"]) > 0


async def test_unacknowledged_message_is_504_never_201(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        prosody: ProsodyServer, receiver: ReceiverFactory) -> None:
    gateway = await start_gateway(ack_timeout="1")
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    assert (await http.post(gateway, f"/msg/{bob.local}", "first", sender=alice)).status == 201
    await inbox.next()
    prosody.pause()
    try:
        reply = await http.post(gateway, f"/msg/{bob.local}", "stalled", sender=alice)
    finally:
        prosody.resume()
    assert reply.status == 504, reply.text
    assert reply.json["error"] == "ack_timeout"
    assert int(reply.headers["Retry-After"]) > 0
    # The suspect session was closed; the next request opens a new one and works.
    reply = await http.post(gateway, f"/msg/{bob.local}", "after the stall", sender=alice)
    assert reply.status == 201, reply.text
    bodies = {(await inbox.next()).body}
    while "after the stall" not in bodies:
        bodies.add((await inbox.next()).body)


async def test_wrong_password_after_a_session_is_open(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    assert (await http.post(gateway, f"/msg/{bob.local}", "one", sender=alice)).status == 201
    reply = await http.post(gateway, f"/msg/{bob.local}", "impostor", user=alice.jid,
                            password="guess")
    assert reply.status == 401, reply.text
    assert (await http.post(gateway, f"/msg/{bob.local}", "two", sender=alice)).status == 201
    assert [m.body for m in await inbox.collect(2)] == ["one", "two"]
    await nothing_else_arrived(http, gateway, alice, inbox, bob.local)


async def test_200_concurrent_posts_one_session_each_delivered_once(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    replies = await asyncio.gather(*(
        http.post(gateway, f"/msg/{bob.local}", f"message {i}", sender=alice)
        for i in range(200)))
    assert [r.status for r in replies] == [201] * 200
    assert len({r.json["id"] for r in replies}) == 200
    got = await inbox.collect(200)
    assert sorted(m.body for m in got) == sorted(f"message {i}" for i in range(200))
    await nothing_else_arrived(http, gateway, alice, inbox, bob.local)  # exactly once
    senders = {m.sender for m in got}
    assert len(senders) == 1, senders  # one session: one resource
    assert gateway.pool.opened_total == 1


async def test_gateway_session_sends_no_presence(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    alice_client = await receiver(alice, resource="phone")
    bob_client = await receiver(bob)
    await bob_client.subscribe_to(alice_client)
    await alice_client.stop()
    reply = await http.post(gateway, f"/msg/{bob.local}", "quietly", sender=alice)
    assert reply.status == 201
    assert (await bob_client.next()).body == "quietly"
    seen = [who for who, kind in bob_client.presences if "xmpp-post" in who]
    assert seen == []


async def test_options_healthz_and_other_methods(
        gateway: Gateway, http: Client) -> None:
    reply = await http.request("OPTIONS", gateway.url + "/msg/bob")
    assert reply.status == 200
    assert "POST" in reply.headers["Allow"]
    assert "application/json" in reply.headers["Accept-Post"]
    reply = await http.request("GET", gateway.url + "/msg/bob")
    assert reply.status == 405 and reply.json["error"] == "method_not_allowed"
    assert "POST" in reply.headers["Allow"]
    reply = await http.request("GET", gateway.url + "/healthz")
    assert reply.status == 200 and reply.json["status"] == "ok"
    reply = await http.request("GET", gateway.url + "/no/where")
    assert reply.status == 404 and reply.json["error"] == "not_found"
    reply = await http.request("GET", gateway.url + "/nowhere")  # an ntfy topic
    assert reply.status == 405 and reply.headers["Allow"] == "OPTIONS, POST, PUT"
