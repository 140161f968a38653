"""The PROXY protocol reader: the header formats, and an aiohttp site behind it that
only a trusted peer may talk to (see test_proxy_trust.py for the gateway)."""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from xmpp_post.http.proxy_protocol import (
    V2_SIGNATURE,
    Address,
    ProxyHeader,
    ProxyHeaderError,
    ProxyProtocolReader,
    ProxySite,
    parse,
    peer_address,
)


def loopback(address: Address) -> bool:
    return address == ipaddress.ip_address("127.0.0.1")


def v2(command: int, family: int, payload: bytes) -> bytes:
    head = bytes([0x20 | command, family]) + struct.pack("!H", len(payload))
    return V2_SIGNATURE + head + payload


def v2_tcp4(source: str, port: int, tlv: bytes = b"") -> bytes:
    addresses = (ipaddress.ip_address(source).packed + ipaddress.ip_address("10.0.0.1").packed
                 + struct.pack("!HH", port, 5280))
    return v2(1, 0x11, addresses + tlv)


@pytest.mark.parametrize(("data", "header", "used"), [
    (b"PROXY TCP4 203.0.113.9 10.0.0.1 40000 5280\r\nGET", ProxyHeader(
        ("203.0.113.9", 40000), ("10.0.0.1", 5280)), 44),
    (b"PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n", ProxyHeader(
        ("2001:db8::7", 1), ("2001:db8::1", 2)), 40),
    (b"PROXY UNKNOWN\r\n", ProxyHeader(None), 15),
    (v2_tcp4("198.51.100.4", 1234), ProxyHeader(("198.51.100.4", 1234), ("10.0.0.1", 5280)),
     28),
    (v2_tcp4("198.51.100.4", 1234, b"\x04\x00\x01x") + b"GET",
     ProxyHeader(("198.51.100.4", 1234), ("10.0.0.1", 5280)), 32),
    (v2(1, 0x21, ipaddress.ip_address("2001:db8::9").packed * 2 + b"\x00\x01\x00\x02"),
     ProxyHeader(("2001:db8::9", 1), ("2001:db8::9", 2)), 52),
    (v2(0, 0x00, b""), ProxyHeader(None), 16),  # LOCAL: a health check of the proxy
    # IPv4 in IPv6 is the IPv4 client (one address, one throttle count)
    (b"PROXY TCP6 ::ffff:203.0.113.9 ::1 1 2\r\n", ProxyHeader(
        ("203.0.113.9", 1), ("::1", 2)), 39),
    (v2(1, 0x21, ipaddress.ip_address("::ffff:198.51.100.4").packed * 2 + b"\x00\x01\x00\x02"),
     ProxyHeader(("198.51.100.4", 1), ("198.51.100.4", 2)), 52),
])
def test_headers_are_read(data: bytes, header: ProxyHeader, used: int) -> None:
    assert parse(data) == (header, used)


@pytest.mark.parametrize("data", [b"", b"PRO", b"PROXY TCP4 1.2.3.4", V2_SIGNATURE[:5],
                                  v2_tcp4("1.2.3.4", 1)[:20]])
def test_an_incomplete_header_asks_for_more(data: bytes) -> None:
    assert parse(data) is None


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\n", b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", b"PROXY TCP4 ::1 ::1 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n",
    b"PROXY " + b"x" * 120, b"\r\n\r\nXXXXXXXXXXXX", V2_SIGNATURE + b"\x12\x11\x00\x0c",
    V2_SIGNATURE + b"\x21\x11\x00\x04abcd", V2_SIGNATURE + b"\x21\x11\xff\xff",
    # an IPv6 zone id is free text: endless distinct addresses of one
    b"PROXY TCP6 fe80::1%zz ::1 1 2\r\n", b"PROXY TCP6 ::1 fe80::1%0 1 2\r\n",
    b"PROXY TCP6 fe80::1% ::1 1 2\r\n",
])
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(data)


async def remote(request: web.Request) -> web.Response:
    return web.Response(text=str(request.remote))


@pytest.fixture
async def site() -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/", remote)
    runner = web.AppRunner(app)
    await runner.setup()
    proxied = ProxySite(runner, "127.0.0.1", 0, header_timeout=0.5, trusted=loopback)
    await proxied.start()
    server = proxied._server
    assert server is not None
    yield int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    await runner.cleanup()


async def exchange(port: int, *chunks: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def test_the_client_address_comes_from_the_header(site: int) -> None:
    answer = await exchange(site, b"PROXY TCP4 203.0.113.9 10.0.0.1 40000 5280\r\n" + REQUEST)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"203.0.113.9")
    answer = await exchange(site, v2_tcp4("198.51.100.4", 1)[:7], v2_tcp4("198.51.100.4", 1)[7:],
                            REQUEST[:10], REQUEST[10:])
    assert answer.endswith(b"198.51.100.4")


# The reader itself, given its data in pieces (over a socket, pieces written apart may
# arrive together): a transport and an inner protocol that note what they are told.
class NotedTransport(asyncio.Transport):
    def __init__(self, peer: str = "127.0.0.1") -> None:
        super().__init__()
        self.peer = peer
        self.aborted = asyncio.Event()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.peer, 40000) if name == "peername" else default

    def abort(self) -> None:
        self.aborted.set()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol


class Inner(asyncio.Protocol):
    def __init__(self) -> None:
        self.peer: object = None
        self.received = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.peer = transport.get_extra_info("peername")

    def data_received(self, data: bytes) -> None:
        self.received += data


def reader(timeout: float = 60) -> tuple[ProxyProtocolReader, NotedTransport, Inner]:
    inner = Inner()
    protocol = ProxyProtocolReader(lambda: inner, timeout, loopback)
    transport = NotedTransport()
    protocol.connection_made(transport)
    return protocol, transport, inner


@pytest.mark.parametrize("header", [b"PROXY TCP4 203.0.113.9 10.0.0.1 40000 5280\r\n",
                                    v2_tcp4("203.0.113.9", 40000)], ids=["v1", "v2"])
@pytest.mark.parametrize("piece", [1, 7])
async def test_a_header_in_pieces_is_read_whole(header: bytes, piece: int) -> None:
    protocol, transport, inner = reader()
    data = header + REQUEST
    for start in range(0, len(data), piece):  # to whichever protocol the transport has
        getattr(transport, "protocol", protocol).data_received(data[start:start + piece])
    assert transport.protocol is inner and inner.peer == ("203.0.113.9", 40000)
    assert inner.received == REQUEST
    assert not transport.aborted.is_set()


async def test_a_silent_peer_is_cut_off_at_the_header_timeout() -> None:
    protocol, transport, inner = reader(timeout=0)  # the timer fires at the loop's next turn
    protocol.data_received(b"PROXY TCP4 1.2")
    await asyncio.wait_for(transport.aborted.wait(), 5)
    assert inner.peer is None


async def test_a_health_check_header_keeps_the_peer(site: int) -> None:
    assert (await exchange(site, v2(0, 0, b"") + REQUEST)).endswith(b"127.0.0.1")


async def test_an_untrusted_peer_is_closed_unread(site: int,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", site,
                                                   local_addr=("127.0.0.7", 0))
    writer.write(b"PROXY TCP4 6.6.6.6 10.0.0.1 1 2\r\n" + REQUEST)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert "refused a connection from 127.0.0.7: not a trusted proxy" in caplog.text


@pytest.mark.parametrize(("peername", "address"), [
    (("10.0.0.1", 5), "10.0.0.1"), (("::ffff:10.0.0.1", 5, 0, 0), "10.0.0.1"),
    (("2001:db8::1", 5, 0, 0), "2001:db8::1"), ("/run/sock", None), (None, None),
    (("not an address", 5), None),
])
def test_the_peer_address(peername: object, address: str | None) -> None:
    found = peer_address(peername)
    assert (str(found) if found is not None else None) == address


async def test_no_header_no_answer(site: int) -> None:
    assert await exchange(site, REQUEST) == b""


def test_the_site_works_on_uvloop_too() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> bytes:
        app = web.Application()
        app.router.add_get("/", remote)
        runner = web.AppRunner(app)
        await runner.setup()
        proxied = ProxySite(runner, "127.0.0.1", 0, header_timeout=0.5, trusted=loopback)
        await proxied.start()
        assert proxied._server is not None
        port = int(proxied._server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        try:
            return await exchange(port, v2_tcp4("198.51.100.4", 1) + REQUEST)
        finally:
            await runner.cleanup()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(scenario()).endswith(b"198.51.100.4")
