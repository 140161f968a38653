"""HAProxy's PROXY protocol (v1 text and v2 binary), in front of aiohttp's protocol.

With ``--proxy-protocol`` every connection must come from a trusted proxy
(``--trusted-proxy``) and start with a PROXY header carrying the address the proxy
received the connection from. A connection from any other peer is closed at once,
unanswered and unread: whoever could send the header would pick the client address the
login throttle and the logs go by. ``ProxyProtocolReader`` reads that header (within
``timeout`` seconds), then hands the connection to aiohttp's own protocol and steps
aside (``transport.set_protocol``): later reads go straight to aiohttp. The transport
aiohttp sees (``ProxiedTransport``) answers ``get_extra_info("peername")`` with the
client's address, so ``request.remote`` is the real client. A connection without a
valid header is closed unanswered, a trusted proxy's too (falling back to the proxy's
own address would put every client behind it under one throttle count). ``LOCAL`` (v2)
and ``UNKNOWN`` (v1) headers, which proxies send for their own health checks, keep the
TCP peer as the address. An address with an IPv6 zone id (``fe80::1%eth0``) is refused:
the zone is free text, so it would make endless distinct addresses of one; an
IPv4-mapped IPv6 address is its IPv4 address.

Without ``--proxy-protocol`` none of this is in the path (the plain ``web.TCPSite``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

log = logging.getLogger(__name__)
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_MAX_PAYLOAD = 4096  # addresses plus any TLVs a proxy adds


class ProxyHeaderError(ValueError):
    """The connection did not start with a valid PROXY header."""


@dataclass(frozen=True)
class ProxyHeader:
    """``source``: the client's (host, port), or None for LOCAL/UNKNOWN (keep the peer)."""

    source: tuple[str, int] | None
    destination: tuple[str, int] | None = None


def parse(data: bytes) -> tuple[ProxyHeader, int] | None:
    """The header at the start of ``data`` and its length in bytes, or None if more bytes
    are needed to tell. Raises ``ProxyHeaderError`` for anything else."""
    if data[:1] == V2_SIGNATURE[:1]:
        if len(data) >= 16:
            return _parse_v2(data)
        if not V2_SIGNATURE.startswith(data[:12]):
            raise ProxyHeaderError("bad PROXY v2 signature")
        return None
    if not V1_PREFIX.startswith(data[:6]):
        raise ProxyHeaderError("no PROXY header")
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("PROXY v1 line too long")
        return None
    return _parse_v1(data[:end].decode("ascii", "replace")), end + 2


def _address(text: str, port: str, version: int) -> tuple[str, int]:
    if "%" in text:  # a zone id: free text after the address
        raise ProxyHeaderError("an address with a zone id")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyHeaderError(f"invalid address {text[:45]!r}") from None
    if address.version != version or not port.isdigit() or len(port) > 5 or int(port) > 65535:
        raise ProxyHeaderError("invalid address or port")
    return _client(address), int(port)


def _client(address: Address) -> str:
    """The address as the throttle and logs know it: IPv4-mapped IPv6 as IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _parse_v1(line: str) -> ProxyHeader:
    parts = line.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(None)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError("malformed PROXY v1 line")
    version = 4 if parts[1] == "TCP4" else 6
    return ProxyHeader(_address(parts[2], parts[4], version),
                       _address(parts[3], parts[5], version))


def _parse_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    if data[:12] != V2_SIGNATURE:
        raise ProxyHeaderError("bad PROXY v2 signature")
    version, command = data[12] >> 4, data[12] & 0x0F
    family, length = data[13] >> 4, int.from_bytes(data[14:16], "big")
    if version != 2 or command > 1:
        raise ProxyHeaderError("unsupported PROXY v2 version or command")
    if length > V2_MAX_PAYLOAD:
        raise ProxyHeaderError("PROXY v2 header too long")
    if len(data) < 16 + length:
        return None
    payload = data[16:16 + length]
    if command == 0 or family not in (1, 2):  # LOCAL, or UNSPEC/UNIX: keep the peer
        return ProxyHeader(None), 16 + length
    size = 4 if family == 1 else 16
    if length < 2 * size + 4:
        raise ProxyHeaderError("PROXY v2 addresses truncated")
    source = ipaddress.ip_address(payload[:size])
    destination = ipaddress.ip_address(payload[size:2 * size])
    ports = payload[2 * size:2 * size + 4]
    return (ProxyHeader((_client(source), int.from_bytes(ports[:2], "big")),
                        (_client(destination), int.from_bytes(ports[2:], "big"))),
            16 + length)


def peer_address(peername: Any) -> Address | None:
    """The IP address of a TCP peer (``get_extra_info("peername")``), IPv4-mapped IPv6
    as IPv4; None when there is none."""
    host = peername[0] if isinstance(peername, tuple) and peername else None
    try:
        address = ipaddress.ip_address(host) if isinstance(host, str) else None
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ProxiedTransport(asyncio.Transport):
    """The connection's transport, with the PROXY header's source as its peername."""

    def __init__(self, transport: asyncio.Transport, peername: tuple[str, int]) -> None:
        super().__init__()
        self._transport = transport
        self._peername = peername

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peername
        return self._transport.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self._transport.writelines(list_of_data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def write_eof(self) -> None:
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()


Trusted = Callable[[Address], bool]


class ProxyProtocolReader(asyncio.Protocol):
    """Reads the PROXY header of a ``trusted`` peer, then gives the connection to
    ``factory()``'s protocol; closes the connection of any other peer at once."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], timeout: float,
                 trusted: Trusted) -> None:
        self._factory = factory
        self._timeout = timeout
        self._trusted = trusted
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses).
        self._transport = cast(asyncio.Transport, transport)
        peer = peer_address(transport.get_extra_info("peername"))
        if peer is None or not self._trusted(peer):
            self._refuse("not a trusted proxy")
            return
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._refuse,
                                                            "no PROXY header in time")

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        self._buffer += data
        try:
            parsed = parse(bytes(self._buffer))
        except ProxyHeaderError as exc:
            self._refuse(str(exc))
            return
        if parsed is None:
            return
        header, used = parsed
        self._stop_timer()
        rest, self._buffer, self._transport = bytes(self._buffer[used:]), bytearray(), None
        inner = self._factory()
        transport.set_protocol(inner)
        inner.connection_made(transport if header.source is None
                              else ProxiedTransport(transport, header.source))
        if rest:
            inner.data_received(rest)

    def eof_received(self) -> bool | None:
        if not self._buffer:  # a port probe (a TCP health check): nothing to report
            transport, self._transport = self._transport, None
            self._stop_timer()
            if transport is not None:
                transport.close()
            return None
        self._refuse("closed before the end of the PROXY header")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        self._transport = None

    def _refuse(self, why: str) -> None:
        transport, self._transport = self._transport, None
        self._stop_timer()
        if transport is not None:
            peer = transport.get_extra_info("peername")
            log.warning("refused a connection from %s: %s",
                        peer[0] if isinstance(peer, tuple) and peer else peer, why)
            transport.abort()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class ProxySite(web.BaseSite):
    """An aiohttp TCP site whose connections come from ``trusted`` proxies and start
    with a PROXY header."""

    __slots__ = ("_header_timeout", "_host", "_port", "_trusted")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 header_timeout: float, trusted: Trusted, backlog: int = 128) -> None:
        super().__init__(runner, backlog=backlog)
        self._host, self._port, self._header_timeout = host, port, header_timeout
        self._trusted = trusted

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port} (PROXY protocol)"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        timeout, trusted = self._header_timeout, self._trusted
        self._server = await asyncio.get_running_loop().create_server(
            lambda: ProxyProtocolReader(server, timeout, trusted), self._host, self._port,
            backlog=self._backlog)
