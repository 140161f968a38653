"""Hostile clients against the limits, end to end against the real Prosody: content that
would cost a session, concurrent guesses, bodies that never come, a stranger's
Idempotency-Key, state an authenticated sender could grow."""

from __future__ import annotations

import asyncio
import json
import socket

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory, basic, metric
from tests.helpers.faults import (
    ServerFactory,
    client_from,
    gateway_for,
    nothing_else_arrived,
    register,
)
from tests.helpers.raw_http import head, read_reply
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.model import OutgoingMessage
from xmpp_post.service import Gateway
from xmpp_post.xmpp.stanzas import wire_size

# 1. a body within max_body whose stanza is over the server's limit ------------------------


async def test_a_body_that_grows_past_the_stanza_limit_is_413_and_costs_no_session(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    assert (await http.post(gateway, f"/msg/{bob.local}", "warm up", sender=alice)).status \
        == 201
    amps = "&" * (64 * 1024)  # exactly max_body; about 320 KiB once escaped
    replies = await asyncio.gather(
        http.post(gateway, f"/msg/{bob.local}", amps, sender=alice),
        *(http.post(gateway, f"/msg/{bob.local}", f"beside it {n}", sender=alice)
          for n in range(10)))
    big, *others = replies
    assert big.status == 413, big.text
    assert big.json["error"] == "stanza_too_large" and "Retry-After" not in big.headers
    assert [r.status for r in others] == [201] * 10
    got = await inbox.collect(11)
    assert sorted(m.body for m in got)[-1] == "warm up" and amps not in {m.body for m in got}
    assert gateway.pool.opened_total == 1


async def test_the_stanza_limit_is_measured_as_the_server_counts(
        own_prosody: ServerFactory, http: Client) -> None:
    limit = 10000  # Prosody's smallest c2s_stanza_size_limit
    server = own_prosody(muc=False, extra_config=[f"c2s_stanza_size_limit = {limit}"])
    alice, bob = register(server, "alice"), register(server, "bob")
    fits = "x" * 100
    while wire_size(OutgoingMessage(to=bob.jid, body=fits + "&<'", nick="alice")) <= limit:
        fits += "x"
    fits = fits[:-1] + "&<'"  # the largest body the gateway lets through
    async with gateway_for(server, max_stanza_size=str(limit)) as gateway:
        reply = await http.post(gateway, "/msg/bob", fits, sender=alice)
        assert reply.status == 201, reply.text  # the server took it: the bound holds
        reply = await http.post(gateway, "/msg/bob", fits + "x", sender=alice)
        assert reply.status == 413 and reply.json["error"] == "stanza_too_large"
        assert gateway.pool.opened_total == 1


# 2. concurrent guesses -------------------------------------------------------------------


def connections(prosody: ProsodyServer) -> int:
    return prosody.log_file.read_text().count("Client connected")


async def test_concurrent_guesses_count_while_in_flight(
        gateway: Gateway, account: AccountFactory, prosody: ProsodyServer) -> None:
    alice, bob = account("alice"), account("bob")
    before = connections(prosody)
    async with client_from("127.0.0.11") as attacker:
        replies = await asyncio.gather(*(
            attacker.post(gateway, f"/msg/{bob.local}", "x", user=alice.jid,
                          password=f"guess {n}") for n in range(40)))
    statuses = sorted(r.status for r in replies)
    assert statuses == [401] * 5 + [429] * 35, statuses  # auth_failure_limit is 5
    assert connections(prosody) - before <= 5


async def test_a_burst_with_one_wrong_password_is_one_login_on_the_server(
        gateway: Gateway, http: Client, account: AccountFactory,
        prosody: ProsodyServer) -> None:
    alice, bob = account("alice"), account("bob")
    before = connections(prosody)
    replies = await asyncio.gather(*(
        http.post(gateway, f"/msg/{bob.local}", "x", user=alice.jid, password="stale")
        for _ in range(6)))
    assert [r.status for r in replies] == [401] * 6
    # Requests queued behind the refused login share its answer (one that came in after
    # it had failed would ask again).
    assert connections(prosody) - before <= 2


# 3. clients that never send their body ---------------------------------------------------


async def test_requests_that_never_send_their_body_hold_no_delivery_slot(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    gateway = await start_gateway(max_concurrent_requests="4", client_timeout="5")
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    stalled = []
    for _ in range(12):  # no credentials needed: a head, and never the body
        sock = socket.create_connection(("127.0.0.1", gateway.port))
        sock.sendall(head("/msg/x", None, 100))
        stalled.append(sock)
    try:
        for n in range(3):
            reply = await http.post(gateway, f"/msg/{bob.local}", f"through {n}", sender=alice)
            assert reply.status == 201, reply.text
        assert sorted(m.body for m in await inbox.collect(3)) == \
            ["through 0", "through 1", "through 2"]
    finally:
        for sock in stalled:
            sock.close()


async def test_too_many_unfinished_bodies_from_one_address_are_429(
        start_gateway: GatewayFactory, account: AccountFactory) -> None:
    gateway = await start_gateway(max_uploads_per_address="3", client_timeout="5")
    alice, bob = account("alice"), account("bob")
    auth = basic(alice.jid, alice.password)
    stalled = []
    try:
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port,
                                                           local_addr=("127.0.0.12", 0))
            writer.write(head(f"/msg/{bob.local}", auth, 10) + b"part")
            stalled.append((reader, writer))
        await asyncio.sleep(0.2)  # let the gateway start reading them
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port,
                                                       local_addr=("127.0.0.12", 0))
        writer.write(head(f"/msg/{bob.local}", auth, 10) + b"part")
        reply = await read_reply(reader)
        assert reply.status == 429 and reply.json["error"] == "too_many_uploads"
        assert "Retry-After" in reply.head
        writer.transport.abort()
        # Another address is not affected; the stalled ones finish normally.
        async with client_from("127.0.0.13") as other:
            assert (await other.post(gateway, f"/msg/{bob.local}", "x",
                                     sender=alice)).status == 201
        for reader, writer in stalled:
            writer.write(b"-rest!")
            assert (await read_reply(reader)).status == 201
    finally:
        for _reader, writer in stalled:
            writer.transport.abort()


# 4. a stranger and the owner's Idempotency-Key -----------------------------------------


async def test_a_stranger_cannot_store_or_read_the_owners_idempotent_answer(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    key = {"Idempotency-Key": "nightly-backup"}
    for _ in range(2):  # a wrong password, an empty body, a guessable key
        reply = await http.post(gateway, f"/msg/{bob.local}", "", user=alice.jid,
                                password="guess", headers=key)
        # the password is checked before the body: refused, and nothing stored
        assert reply.status == 401 and "Idempotent-Replayed" not in reply.headers
    reply = await http.post(gateway, f"/msg/{bob.local}", "backup done", sender=alice,
                            headers=key)
    assert reply.status == 201, reply.text
    assert (await inbox.next()).body == "backup done"
    again = await http.post(gateway, f"/msg/{bob.local}", "backup done", sender=alice,
                            headers=key)
    assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    # The stranger, replaying the owner's request with a guessed password, learns nothing.
    stranger = await http.post(gateway, f"/msg/{bob.local}", "backup done", user=alice.jid,
                               password="guess", headers=key)
    assert stranger.status == 401 and "Idempotent-Replayed" not in stranger.headers
    await nothing_else_arrived(http, gateway, alice, inbox, bob.local)


# 12. what an authenticated sender can make the gateway remember --------------------------


async def test_a_sender_cannot_grow_the_group_chat_directory_or_its_locks(
        gateway: Gateway, http: Client, account: AccountFactory) -> None:
    alice = account("alice")
    directory = gateway.xmpp_relay.directory
    assert directory is not None
    directory.max_entries = 8
    recipients = [f"x@d{n}.invalid" for n in range(20)]  # a domain each, asked at once
    reply = await http.post(gateway, "/msg", json.dumps({"to": recipients, "body": "x"}),
                            sender=alice, content_type="application/json")
    assert reply.status in (201, 207), reply.text
    assert len(directory) <= 8 and directory.asking == 0
    for method in ("PROPFIND", "LINK"):  # any method: one label, not one per method
        reply = await http.request(method, gateway.url + "/msg/bob")
        assert reply.status == 405
    text = (await http.request("GET", gateway.url + "/metrics")).text
    assert 'method="LINK"' not in text and metric(
        text, "xmpp_post_http_requests_total", method="other", status="405") == 2
