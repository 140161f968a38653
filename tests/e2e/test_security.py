"""Security end to end: login throttling, secrets kept out of logs, limits under abuse, TLS."""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import pytest

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory, basic
from tests.helpers.faults import (
    ServerFactory,
    client_from,
    eventually,
    gateway_for,
    register,
)
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.model import Sender
from xmpp_post.service import Gateway
from xmpp_post.testing import ManualClock


def connections(prosody: ProsodyServer) -> int:
    return prosody.log_file.read_text().count("Client connected")


# password guessing ----------------------------------------------------------------------


async def test_guessing_one_account_from_one_address_is_429_without_asking_the_server(
        gateway: Gateway, http: Client, account: AccountFactory, prosody: ProsodyServer,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    async with client_from("127.0.0.2") as attacker:
        for i in range(5):  # auth_failure_limit defaults to 5
            reply = await attacker.post(gateway, f"/msg/{bob.local}", "x", user=alice.jid,
                                        password=f"guess {i}")
            assert reply.status == 401, reply.text
        before = connections(prosody)
        started = time.monotonic()
        for password in ("guess 5", alice.password):  # even the right one, from there
            reply = await attacker.post(gateway, f"/msg/{bob.local}", "x", user=alice.jid,
                                        password=password)
            assert reply.status == 429, reply.text
            assert reply.json["error"] == "too_many_failed_logins"
            assert 1 <= int(reply.headers["Retry-After"]) <= 60
        assert time.monotonic() - started < 1.0
        assert connections(prosody) == before  # the XMPP server was not asked
    # The owner, from another address, still gets in.
    reply = await http.post(gateway, f"/msg/{bob.local}", "it is me", sender=alice)
    assert reply.status == 201, reply.text
    assert (await inbox.next()).body == "it is me"


async def test_guessing_many_accounts_from_one_address_locks_the_address(
        start_gateway: GatewayFactory, account: AccountFactory,
        prosody: ProsodyServer) -> None:
    gateway = await start_gateway(auth_failure_limit_address="6")
    alice = account("alice")
    async with client_from("127.0.0.3") as attacker:
        for i in range(6):
            reply = await attacker.post(gateway, "/msg/bob", "x", user=f"nobody{i}",
                                        password="guess")
            assert reply.status == 401, reply.text
        before = connections(prosody)
        reply = await attacker.post(gateway, "/msg/bob", "x", user="nobody99", password="x")
        assert reply.status == 429 and "Retry-After" in reply.headers
        reply = await attacker.post(gateway, "/msg/bob", "x", sender=alice)
        assert reply.status == 429
        assert connections(prosody) == before
    async with client_from("127.0.0.4") as other:
        assert (await other.post(gateway, "/msg/bob", "x", sender=alice)).status == 201


async def test_guessing_one_account_from_many_addresses_spares_a_known_password(
        start_gateway: GatewayFactory, account: AccountFactory,
        prosody: ProsodyServer) -> None:
    gateway = await start_gateway(auth_failure_limit="3", auth_failure_limit_account="4")
    alice, carol = account("alice"), account("carol")
    async with client_from("127.0.0.5") as owner:
        assert (await owner.post(gateway, "/msg/bob", "x", sender=alice)).status == 201
        assert (await owner.post(gateway, "/msg/bob", "x", sender=carol)).status == 201
    await gateway.pool.stop()  # no session to reuse
    for n, address in enumerate(("127.0.0.6", "127.0.0.7")):
        async with client_from(address) as attacker:
            for i in range(2):
                reply = await attacker.post(gateway, "/msg/bob", "x", user=alice.jid,
                                            password=f"guess {n} {i}")
                assert reply.status == 401, reply.text
    before = connections(prosody)
    async with client_from("127.0.0.8") as attacker:
        reply = await attacker.post(gateway, "/msg/bob", "x", user=alice.jid,
                                    password="one more")
        assert reply.status == 429, reply.text
    assert connections(prosody) == before
    async with client_from("127.0.0.9") as owner:  # a new address, the known password
        assert (await owner.post(gateway, "/msg/bob", "x", sender=alice)).status == 201
        assert (await owner.post(gateway, "/msg/bob", "x", sender=carol)).status == 201


# secrets in logs ------------------------------------------------------------------------


async def test_no_password_authorization_or_body_in_logs_at_the_default_level(
        caplog: pytest.LogCaptureFixture, start_gateway: GatewayFactory,
        http: Client, account: AccountFactory, receiver: ReceiverFactory) -> None:
    caplog.set_level(logging.INFO)  # the default log_level
    gateway = await start_gateway()
    alice, bob = account("alice", password="s3cret-Passw0rd-xyzzy"), account("bob")
    inbox = await receiver(bob)
    body = "top secret body text 4711"
    assert (await http.post(gateway, f"/msg/{bob.local}", body, sender=alice)).status == 201
    assert (await inbox.next()).body == body
    wrong = "wr0ng-Passw0rd-plugh"
    reply = await http.post(gateway, f"/msg/{bob.local}", body + " again", user=alice.jid,
                            password=wrong)
    assert reply.status == 401
    reply = await http.post(gateway, f"/msg/{bob.local}", "x" * 70000, sender=alice)
    assert reply.status == 413
    await gateway.stop()
    text = caplog.text
    assert "session opened" in text and "failed login" in text  # the logs do speak
    for secret in (alice.password, wrong, body,
                   basic(alice.jid, alice.password).split()[1],
                   basic(alice.jid, wrong).split()[1],
                   base64.b64encode(alice.password.encode()).decode()):
        assert secret not in text, secret
    assert not any(r.name.startswith("slixmpp") and r.levelno < logging.WARNING
                   for r in caplog.records)


# limits under abuse ---------------------------------------------------------------------


async def test_oversized_header_is_refused(gateway: Gateway, http: Client,
                                           account: AccountFactory) -> None:
    alice = account("alice")
    reply = await http.post(gateway, "/msg/bob", "x", sender=alice,
                            headers={"X-Padding": "p" * 9000})
    assert reply.status in (400, 431), reply.text


async def _raw(gateway: Gateway) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", gateway.port)


async def test_a_client_trickling_its_request_head_is_cut_off(
        start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(client_timeout="1")
    reader, writer = await _raw(gateway)
    started = time.monotonic()
    try:
        writer.write(b"POST /msg/bob HTTP/1.1\r\nHost: x\r\n")
        for _ in range(40):
            writer.write(b"X")  # one byte of a never-ending header every 0.1 s
            await writer.drain()
            await asyncio.sleep(0.1)
    except ConnectionError:
        pass
    try:
        left = await asyncio.wait_for(reader.read(), 5)
    except ConnectionError:
        left = b""
    assert left == b""  # closed, and no request was handled
    assert time.monotonic() - started < 3
    writer.transport.abort()


async def test_a_client_trickling_its_body_gets_408(
        start_gateway: GatewayFactory, account: AccountFactory) -> None:
    gateway = await start_gateway(client_timeout="1")
    alice = account("alice")
    reader, writer = await _raw(gateway)
    started = time.monotonic()
    writer.write(f"POST /msg/bob HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                 f"Authorization: {basic(alice.jid, alice.password)}\r\n"
                 f"Content-Length: 100\r\n\r\n".encode())
    writer.write(b"slow")
    await writer.drain()
    head = await asyncio.wait_for(reader.readline(), 5)
    assert head.startswith(b"HTTP/1.1 408"), head
    assert time.monotonic() - started < 3
    writer.close()


async def test_concurrent_requests_beyond_the_limit_are_503_busy(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        prosody: ProsodyServer) -> None:
    gateway = await start_gateway(max_concurrent_requests="2")
    alice = account("alice")
    assert (await http.post(gateway, "/msg/bob", "x", sender=alice)).status == 201
    session = await gateway.pool.session_for(
        Sender(alice.jid, alice.password))
    prosody.pause()  # two requests hold their slot while they wait for the acknowledgement
    try:
        held = [asyncio.create_task(http.post(gateway, "/msg/bob", f"held {n}", sender=alice))
                for n in range(2)]
        await eventually(lambda: session.in_flight == 2)
        reply = await http.post(gateway, "/msg/bob", "x", sender=alice)
    finally:
        prosody.resume()
    assert reply.status == 503, reply.text
    assert reply.json["error"] == "busy" and int(reply.headers["Retry-After"]) > 0
    assert [r.status for r in await asyncio.gather(*held)] == [201, 201]
    assert (await http.post(gateway, "/msg/bob", "x", sender=alice)).status == 201


async def test_requests_queued_behind_a_hanging_open_are_bounded_by_request_timeout(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        prosody: ProsodyServer) -> None:
    gateway = await start_gateway(request_timeout="1.5", connect_timeout="10",
                                  max_concurrent_opens="1")
    senders = [account("alice") for _ in range(3)]
    prosody.pause()
    try:
        started = time.monotonic()
        replies = await asyncio.gather(*(
            http.post(gateway, "/msg/bob", "x", sender=s) for s in senders
            for _ in range(2)))
        elapsed = time.monotonic() - started
    finally:
        prosody.resume()
    assert elapsed < 3.0, elapsed
    for reply in replies:
        assert reply.status == 503, reply.text
        assert reply.json["error"] == "request_timeout" and "Retry-After" in reply.headers
    assert (await http.post(gateway, "/msg/bob", "x", sender=senders[0])).status == 201


async def test_sessions_in_total_are_capped(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory) -> None:
    gateway = await start_gateway(max_sessions="2")
    pool = gateway.pool
    for sender in [account("user") for _ in range(5)]:
        assert (await http.post(gateway, "/msg/bob", "x", sender=sender)).status == 201
        assert pool.open_sessions <= 2
    assert pool.opened_total == 5


# passwords changed on the server --------------------------------------------------------


async def test_password_changed_on_the_server_ends_the_gateway_session_at_once(
        own_prosody: ServerFactory, http: Client) -> None:
    server = own_prosody(extra_modules=["register"])
    alice, bob = register(server, "alice"), register(server, "bob")
    async with gateway_for(server) as gateway:
        assert (await http.post(gateway, "/msg/bob", "before", sender=alice)).status == 201
        pool = gateway.pool
        changer = Receiver(alice.jid, alice.password, server.c2s_port, server.cert_file,
                           resource="changer")
        changer._client.register_plugin("xep_0077")
        await changer.start()
        try:
            await changer._client.plugin["xep_0077"].change_password("a new password")
        finally:
            await changer.stop()
        await eventually(lambda: pool.open_sessions == 0)  # the server ended it
        reply = await http.post(gateway, "/msg/bob", "old password", sender=alice)
        assert reply.status == 401, reply.text
        reply = await http.post(gateway, "/msg/bob", "new password", user=alice.jid,
                                password="a new password")
        assert reply.status == 201, reply.text
    # bob was offline: the server stored what was answered 201, and not the message
    # refused 401 (it would be second).
    async with Receiver(bob.jid, bob.password, server.c2s_port, server.cert_file) as inbox:
        assert [m.body for m in await inbox.collect(2)] == ["before", "new password"]


async def test_a_busy_session_is_reauthenticated_after_the_idle_timeout(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory) -> None:
    clock = ManualClock()
    gateway = await start_gateway(clock=clock, idle_timeout="60")
    alice = account("alice")
    pool = gateway.pool
    for _ in range(4):  # a request every 25 s: never idle, yet re-checked after 60 s
        assert (await http.post(gateway, "/msg/bob", "x", sender=alice)).status == 201
        clock.advance(25)
    assert pool.opened_total == 2


# TLS to the XMPP server -----------------------------------------------------------------


@pytest.mark.parametrize(("options", "code", "why"), [
    ({"cert_names": ["other.example"]}, "tls_failed", "match"),
    ({"cert_expired": True}, "tls_failed", "expired"),
    ({"tls": False}, "tls_required", "no TLS"),
], ids=["wrong-name", "expired", "no-tls"])
async def test_tls_fails_closed_with_503_and_a_reason_in_the_log(
        options: dict[str, object], code: str, why: str, own_prosody: ServerFactory,
        http: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    server = own_prosody(muc=False, **options)
    alice = register(server, "alice")
    async with gateway_for(server) as gateway:
        reply = await http.post(gateway, "/msg/bob", "x", sender=alice)
    assert reply.status == 503, reply.text
    assert reply.json["error"] == code and "Retry-After" in reply.headers
    errors = [r.getMessage() for r in caplog.records
              if r.name.startswith("xmpp_post") and r.levelno >= logging.ERROR]
    assert any(why in line for line in errors), errors
    assert "Authentication" not in server.log_tail(200)
