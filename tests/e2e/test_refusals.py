"""Messages the XMPP server refuses are not 201: a real Prosody refuses them (no such
account, a full offline store, a block, an unknown remote server) and a receiving
client proves that nothing was delivered."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory, metric
from tests.helpers.faults import (
    ServerFactory,
    eventually,
    gateway_for,
    nothing_else_arrived,
    register,
)
from xmpp_post import logs
from xmpp_post.lab.receiver import Receiver
from xmpp_post.service import Gateway

JSON = "application/json"


async def metrics_of(http: Client, gateway: Gateway) -> str:
    return (await http.request("GET", gateway.url + "/metrics")).text


async def test_a_message_to_an_account_that_does_not_exist_is_404_and_the_session_lives(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    reply = await http.post(gateway, "/msg/nosuchuser", "hello?", sender=alice)
    assert reply.status == 404, reply.text
    assert reply.json["error"] == "recipient_unavailable"
    assert "service-unavailable" in reply.json["message"]
    assert "nosuchuser@localhost" in reply.json["message"]
    assert (await http.post(gateway, f"/msg/{bob.local}", "still here",
                            sender=alice)).status == 201
    assert (await inbox.next()).body == "still here"
    assert gateway.pool.opened_total == 1
    text = await metrics_of(http, gateway)
    assert metric(text, "xmpp_post_refusals_total", condition="service-unavailable",
                  when="answer") == 1
    # A refusal is final: with an Idempotency-Key, the retry gets the same answer.
    key = {"Idempotency-Key": "to-nobody"}
    first = await http.post(gateway, "/msg/nosuchuser", "x", sender=alice, headers=key)
    again = await http.post(gateway, "/msg/nosuchuser", "x", sender=alice, headers=key)
    assert first.status == again.status == 404
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_a_full_offline_store_refuses_and_only_what_was_stored_arrives(
        own_prosody: ServerFactory, http: Client) -> None:
    server = own_prosody(muc=False, extra_config=["storage_archive_item_limit = 3"])
    alice, bob = register(server, "alice"), register(server, "bob")
    async with gateway_for(server) as gateway:
        statuses = []
        for n in range(5):  # bob is offline: his offline store takes three
            reply = await http.post(gateway, "/msg/bob", f"message {n}", sender=alice)
            statuses.append(reply.status)
            if reply.status != 201:
                assert reply.json["error"] == "recipient_unavailable", reply.text
        assert statuses == [201, 201, 201, 404, 404]
    async with Receiver(bob.jid, bob.password, server.c2s_port, server.cert_file) as inbox:
        got = [m.body for m in await inbox.collect(3)]
        await asyncio.sleep(0.3)
        assert got == ["message 0", "message 1", "message 2"] and inbox.pending() == []


async def test_a_repeated_client_id_is_matched_to_the_message_that_was_refused(
        own_prosody: ServerFactory, http: Client) -> None:
    server = own_prosody(muc=False, extra_config=["storage_archive_item_limit = 3"])
    alice, bob = register(server, "alice"), register(server, "bob")
    async with gateway_for(server) as gateway:
        replies = await asyncio.gather(*(
            http.post(gateway, "/msg", json.dumps({"to": "bob", "id": "same-id",
                                                   "body": f"message {n}"}),
                      sender=alice, content_type=JSON) for n in range(6)))
    accepted = {f"message {n}" for n, reply in enumerate(replies) if reply.status == 201}
    assert sorted(r.status for r in replies) == [201] * 3 + [404] * 3
    async with Receiver(bob.jid, bob.password, server.c2s_port, server.cert_file) as inbox:
        got = {m.body for m in await inbox.collect(3)}
        await asyncio.sleep(0.3)
        assert inbox.pending() == []
    assert got == accepted  # every 201 was delivered, every 404 was not


async def test_a_recipient_who_blocks_the_sender_refuses_its_messages(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    await inbox.block(alice.jid)
    reply = await http.post(gateway, f"/msg/{bob.local}", "let me in", sender=alice)
    assert reply.status == 404, reply.text
    assert reply.json["error"] == "recipient_unavailable"
    await nothing_else_arrived(http, gateway, account("carol"), inbox, bob.local)


async def test_a_sender_who_blocks_the_recipient_gets_403_recipient_blocked(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    alice_phone = await receiver(alice, resource="phone")
    await alice_phone.block(bob.jid)
    reply = await http.post(gateway, f"/msg/{bob.local}", "blocked", sender=alice)
    assert reply.status == 403, reply.text
    assert reply.json["error"] == "recipient_blocked"
    assert "not-acceptable" in reply.json["message"]
    await nothing_else_arrived(http, gateway, account("carol"), inbox, bob.local)


async def test_with_several_recipients_the_refusal_is_in_that_recipients_entry(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    reply = await http.post(gateway, "/msg", json.dumps(
        {"to": [bob.local, "nosuchuser"], "body": "to both"}), sender=alice,
        content_type=JSON)
    assert reply.status == 207, reply.text
    first, second = reply.json["results"]
    assert (first["status"], first["to"]) == (201, bob.jid)
    assert (second["status"], second["error"], second["to"]) == \
        (404, "recipient_unavailable", "nosuchuser@localhost")
    assert (await inbox.next()).body == "to both"


async def test_a_refusal_from_another_domain_after_the_answer_is_counted_and_logged(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory) -> None:
    gateway = await start_gateway()
    alice = account("alice")
    stream = io.StringIO()
    out = logs.handler(stream, "json")
    refusal_log = logging.getLogger("xmpp_post.xmpp.refusals")
    refusal_log.addHandler(out)
    try:
        reply = await http.post(gateway, "/msg/someone@nowhere.invalid", "x", sender=alice,
                                headers={"X-Request-Id": "late-bounce-1"})
        assert reply.status == 201, reply.text  # acknowledged before the bounce
        await eventually(lambda: "message_refused_after_answer" in stream.getvalue(),
                         timeout=30)
    finally:
        refusal_log.removeHandler(out)
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["request_id"] == "late-bounce-1" and line["to"] == "someone@nowhere.invalid"
    assert line["condition"] == "remote-server-not-found"
    text = await metrics_of(http, gateway)
    assert metric(text, "xmpp_post_refusals_total", condition="remote-server-not-found",
                  when="late") == 1


async def test_bounce_wait_turns_a_late_refusal_from_another_domain_into_the_answer(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    gateway = await start_gateway(bounce_wait="10")
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    reply = await http.post(gateway, "/msg/someone@nowhere.invalid", "x", sender=alice)
    assert reply.status == 404, reply.text
    assert reply.json["error"] == "recipient_server_not_found"
    # Recipients on the sender's own domain are answered at once.
    reply = await http.post(gateway, f"/msg/{bob.local}", "no wait", sender=alice)
    assert reply.status == 201
    assert (await inbox.next()).body == "no wait"
