"""What careless and hostile clients send, end to end against the real Prosody; raw sockets
where an HTTP library would tidy the request up: charsets, log lines, half-closed and
vanishing clients, parser refusals, duplicate headers, byte-order marks, paths."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct

import pytest

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory, basic, metric
from tests.helpers.faults import nothing_else_arrived
from tests.helpers.raw_http import exchange, head, read_reply
from xmpp_post.logs import TextFormatter
from xmpp_post.service import Gateway

# 5. charsets that are not text encodings; values from requests in the log ---------------


@pytest.mark.parametrize("charset", ["rot13", "base64", "hex", "zlib", "uu", "bz2"])
async def test_a_charset_that_is_not_a_text_encoding_is_415(
        charset: str, gateway: Gateway, http: Client, account: AccountFactory) -> None:
    alice = account("alice")
    reply = await http.post(gateway, "/msg/bob", "aGVsbG8=", sender=alice,
                            content_type=f"text/plain; charset={charset}")
    assert reply.status == 415, reply.text
    assert reply.json["error"] == "unsupported_charset"


async def test_request_values_cannot_forge_log_lines(
        gateway: Gateway, account: AccountFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    alice = account("alice")
    forged = "%0A2026-01-01%2000:00:00,000%20ERROR%20forged"
    for path, auth, content_type in [
        (f"/msg/bob{forged}", basic(alice.jid, alice.password), "text/plain; charset=rot13"),
        (f"/msg/bob{forged}", basic(alice.jid, "wrong\npassword"), "text/plain"),
        (f"/msg/{forged}", basic(alice.jid, alice.password), "text/plain"),
    ]:
        reply = await exchange(gateway, head(path, auth, 2, content_type=content_type) + b"hi")
        assert reply.status < 500, reply.body
    formatter = TextFormatter()
    for record in caplog.records:
        record.request_id = "-"
        first, *rest = formatter.format(record).split("\n")
        assert "forged" not in first or "\\n" in first, first
        assert all(line.startswith("  ") for line in rest), rest  # tracebacks only
    assert not any(r.levelno >= logging.ERROR or r.exc_info for r in caplog.records)


# 6. half-closed clients; 7. clients that disconnect mid-body ------------------------------


async def test_a_half_closed_client_gets_its_answer_and_the_message_arrives_once(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    request = head(f"/msg/{bob.local}", basic(alice.jid, alice.password), 9) + b"half-shut"
    reply = await exchange(gateway, request, half_close=True)
    assert reply.status == 201, reply.body
    assert json.loads(reply.body)["to"] == bob.jid
    # Two pipelined requests, then the half-close: both are answered, in order.
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(request.replace(b"half-shut", b"pipe-one!") +
                 request.replace(b"half-shut", b"pipe-two!"))
    writer.write_eof()
    replies = [await read_reply(reader), await read_reply(reader)]
    assert [r.status for r in replies] == [201, 201]
    assert await asyncio.wait_for(reader.read(), 5) == b""  # and then it is closed
    writer.close()
    got = sorted(m.body for m in await inbox.collect(3))
    assert got == ["half-shut", "pipe-one!", "pipe-two!"]
    await nothing_else_arrived(http, gateway, alice, inbox, bob.local)


async def test_a_half_close_before_the_whole_body_is_400_at_once(
        start_gateway: GatewayFactory, account: AccountFactory) -> None:
    gateway = await start_gateway(client_timeout="30")
    alice = account("alice")
    request = head("/msg/bob", basic(alice.jid, alice.password), 100) + b"only part"
    reply = await exchange(gateway, request, half_close=True, timeout=5)
    assert reply.status == 400 and reply.json["error"] == "incomplete_body"


async def test_a_client_that_disconnects_mid_body_is_no_server_error(
        gateway: Gateway, http: Client, account: AccountFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    alice = account("alice")
    for abortive in (False, True):  # a plain close, then a reset (RST)
        sock = socket.create_connection(("127.0.0.1", gateway.port))
        sock.sendall(head("/msg/bob", basic(alice.jid, alice.password), 100) + b"part")
        await asyncio.sleep(0.1)
        if abortive:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    async def recorded() -> tuple[float, float, str]:
        text = (await http.request("GET", gateway.url + "/metrics")).text
        return (metric(text, "xmpp_post_http_requests_total", status="400"),
                metric(text, "xmpp_post_http_requests_total", status="499"), text)

    closed, reset, text = await recorded()
    for _ in range(100):
        if closed and reset:
            break
        await asyncio.sleep(0.05)
        closed, reset, text = await recorded()
    assert (closed, reset) == (1, 1)  # incomplete_body; the client is gone
    assert not [line for line in text.splitlines()
                if line.startswith("xmpp_post_http_requests_total") and 'status="5' in line]
    assert not any(r.levelno >= logging.ERROR or r.exc_info for r in caplog.records)


# 8. parser refusals; 9. two Authorization headers ----------------------------------------


@pytest.mark.parametrize("mangle", ["long header", "bare LF", "long request line",
                                    "bad header name"])
async def test_parser_refusals_are_json_and_never_echo_the_credentials(
        mangle: str, gateway: Gateway, account: AccountFactory) -> None:
    alice = account("alice")
    auth = basic(alice.jid, alice.password)
    request = head("/msg/bob", auth, 2) + b"hi"
    if mangle == "long header":
        request = request.replace(b"Host: gateway", b"X-Padding: " + b"p" * 9000)
    elif mangle == "bare LF":
        request = request.replace(b"\r\n", b"\n")
    elif mangle == "long request line":
        request = request.replace(b"/msg/bob", b"/msg/" + b"b" * 9000)
    else:
        request = request.replace(b"Host: gateway", b"Bad Header: x")
    reply = await exchange(gateway, request)
    assert reply.status in (400, 431), reply
    assert set(reply.json) == {"error", "message"}
    assert reply.json["error"] in ("malformed_request", "header_too_large")
    secret = auth.split()[1]
    assert secret not in reply.head and secret.encode() not in reply.body
    assert alice.password.encode() not in reply.body


async def test_expect_100_continue_works_and_another_expect_is_a_json_417(
        gateway: Gateway, account: AccountFactory, receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    auth = basic(alice.jid, alice.password)
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:  # as curl does for a body over 1 KiB: the head, then the body once invited
        writer.write(head(f"/msg/{bob.local}", auth, 8, extra="Expect: 100-continue\r\n"))
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        writer.write(b"continue")
        assert (await read_reply(reader)).status == 201
    finally:
        writer.transport.abort()
    assert (await inbox.next()).body == "continue"
    reply = await exchange(gateway, head(f"/msg/{bob.local}", auth, 2,
                                         extra="Expect: \xc3\r\n") + b"hi")
    assert reply.status == 417 and set(reply.json) == {"error", "message"}


async def test_two_authorization_headers_are_refused(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob, mallory = account("alice"), account("bob"), account("mallory")
    inbox = await receiver(bob)
    request = head(f"/msg/{bob.local}", basic(mallory.jid, mallory.password), 2,
                   extra=f"Authorization: {basic(alice.jid, alice.password)}\r\n") + b"hi"
    reply = await exchange(gateway, request)
    assert reply.status == 400 and reply.json["error"] == "duplicate_authorization"
    # The same for the other headers the gateway acts on: no "first one wins".
    auth = basic(alice.jid, alice.password)
    for extra, code in (("Content-Type: application/json\r\n", "malformed_request"),
                        ("Idempotency-Key: a\r\nIdempotency-Key: b\r\n", "duplicate_header")):
        reply = await exchange(gateway, head(f"/msg/{bob.local}", auth, 2, extra=extra) + b"hi")
        assert reply.status == 400 and reply.json["error"] == code, reply.body
    await nothing_else_arrived(http, gateway, alice, inbox, bob.local)


# 10. a byte-order mark; 11. paths that are not UTF-8; mod_post_msg's /msg/ --------------


async def test_a_utf8_byte_order_mark_is_not_delivered(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    reply = await http.post(gateway, f"/msg/{bob.local}", b"\xef\xbb\xbfSaved by Notepad",
                            sender=alice)
    assert reply.status == 201, reply.text
    assert (await inbox.next()).body == "Saved by Notepad"
    reply = await http.post(gateway, "/msg", b"\xef\xbb\xbfto=" + bob.local.encode() +
                            b"&body=form", sender=alice,
                            content_type="application/x-www-form-urlencoded")
    assert reply.status == 201, reply.text
    assert (await inbox.next()).body == "form"


async def test_a_path_that_is_not_utf8_is_400_invalid_encoding(
        gateway: Gateway, account: AccountFactory) -> None:
    alice = account("alice")
    auth = basic(alice.jid, alice.password)
    reply = await exchange(gateway, head("/msg/j%FCrgen", auth, 2) + b"hi")
    assert reply.status == 400 and reply.json["error"] == "invalid_encoding"
    reply = await exchange(gateway, head("/msg/j%C3%BCrgen", auth, 2) + b"hi")
    assert reply.status == 404 and "jürgen@localhost" in reply.json["message"]


async def test_post_to_the_base_path_with_a_slash_takes_the_recipient_from_the_body(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    reply = await http.post(gateway, "/msg/", f"to={bob.local}&body=slash", sender=alice,
                            content_type="application/x-www-form-urlencoded")
    assert reply.status == 201, reply.text
    assert (await inbox.next()).body == "slash"
    reply = await http.post(gateway, "/msg/", "no recipient", sender=alice)
    assert reply.status == 422 and reply.json["error"] == "missing_recipient"
