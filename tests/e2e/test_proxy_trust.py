"""The PROXY protocol is believed only from ``--trusted-proxy`` peers, end to end against
the real gateway and Prosody: a stranger that reaches the port cannot pick its client
address (nor defeat the per-address throttle with many), and no address carries an IPv6
zone id (``fe80::1%zz``: a free-form suffix, so endless distinct addresses)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.helpers import AccountFactory, GatewayFactory, basic
from tests.helpers.raw_http import RawReply, head, read_reply
from xmpp_post.service import Gateway

PROXY_HOST = "127.0.0.1"  # the trusted proxy
STRANGER = "127.0.0.5"  # reaches the port, but is no proxy


def proxy_line(source: str) -> bytes:
    family = "TCP6" if ":" in source else "TCP4"
    destination = "::1" if ":" in source else "127.0.0.1"
    return f"PROXY {family} {source} {destination} 40000 5280\r\n".encode()


async def guess(gateway: Gateway, sender: str, password: str, *, prefix: bytes,
                local: str = PROXY_HOST) -> RawReply | None:
    """One login guess over a fresh connection from ``local``, after ``prefix`` (a PROXY
    header); None when the gateway closes the connection unanswered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port,
                                                   local_addr=(local, 0))
    try:
        writer.write(prefix + head("/msg/bob", basic(sender, password), 1) + b"x")
        await writer.drain()
        try:
            return await read_reply(reader, timeout=10)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
    finally:
        writer.transport.abort()


@pytest.fixture
async def proxied(start_gateway: GatewayFactory) -> Gateway:
    return await start_gateway(proxy_protocol=True, trusted_proxy=[f"{PROXY_HOST}/32"],
                               auth_failure_limit="2", auth_failure_limit_address="2")


async def test_a_trusted_proxy_names_the_client_and_the_throttle_counts_it(
        proxied: Gateway, account: AccountFactory, caplog: pytest.LogCaptureFixture) -> None:
    alice = account("alice")
    caplog.set_level(logging.INFO, logger="xmpp_post")
    answers = [await guess(proxied, alice.jid, f"guess {n}",
                           prefix=proxy_line("203.0.113.9")) for n in range(3)]
    assert [a.status if a else None for a in answers] == [401, 401, 429]
    other = await guess(proxied, alice.jid, "guess", prefix=proxy_line("203.0.113.10"))
    assert other is not None and other.status == 401  # another client: its own count
    peers = [getattr(r, "fields", {}).get("peer") for r in caplog.records
             if r.getMessage() == "request"]
    assert peers == ["203.0.113.9"] * 3 + ["203.0.113.10"]


async def test_a_stranger_cannot_pick_its_address(
        proxied: Gateway, account: AccountFactory, caplog: pytest.LogCaptureFixture) -> None:
    alice = account("alice")
    caplog.set_level(logging.INFO, logger="xmpp_post")
    answers = [await guess(proxied, alice.jid, f"guess {n}", local=STRANGER,
                           prefix=proxy_line(f"6.6.6.{n}")) for n in range(5)]
    assert answers == [None] * 5  # closed unanswered: no login was tried
    assert "refused a connection from 127.0.0.5: not a trusted proxy" in caplog.text
    bare = await guess(proxied, alice.jid, "guess", local=STRANGER, prefix=b"")
    assert bare is None  # without a header too: only the proxy talks to this port
    assert not [r for r in caplog.records if r.getMessage() == "request"]


async def test_zone_ids_are_refused_even_from_the_proxy(
        proxied: Gateway, account: AccountFactory, caplog: pytest.LogCaptureFixture) -> None:
    alice = account("alice")
    caplog.set_level(logging.INFO, logger="xmpp_post")
    answers = [await guess(proxied, alice.jid, f"guess {n}",
                           prefix=proxy_line(f"fe80::1%z{n}")) for n in range(5)]
    assert answers == [None] * 5
    assert not [r for r in caplog.records if r.getMessage() == "request"]
    # IPv4 in IPv6 is the IPv4 client: one address, one count.
    answers = [await guess(proxied, alice.jid, f"guess {n}", prefix=proxy_line(source))
               for n, source in enumerate(["::ffff:203.0.113.7", "203.0.113.7",
                                           "::ffff:203.0.113.7"])]
    assert [a.status if a else None for a in answers] == [401, 401, 429]


async def test_a_trusted_proxy_must_still_send_the_header(proxied: Gateway,
                                                          account: AccountFactory) -> None:
    assert await guess(proxied, account("alice").jid, "guess", prefix=b"") is None
