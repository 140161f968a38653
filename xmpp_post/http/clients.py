"""The real client address of a request, for logs, throttling and metrics.

Without proxies it is the TCP peer (or, with ``--proxy-protocol``, the source address the
PROXY header gave: ``xmpp_post.http.proxy_protocol`` puts it in the transport's peername).
With ``--trusted-proxy`` ranges, a request whose peer is in one of them is believed
about ``X-Forwarded-For``: the client is the right-most address in that header that is
not itself a trusted proxy (each proxy appends the address it received from, so
everything left of the first untrusted hop may be forged). A peer outside the ranges is
never believed, and a hop with an IPv6 zone id (``fe80::1%x``: free text) is unreadable
like any other garbage: the walk stops before it. With ``--proxy-protocol`` the ranges
also say who may send the PROXY header (any other peer's connection is closed), and
the peer checked here is the client that header names: a client inside the ranges would
be believed about ``X-Forwarded-For`` too, so they should hold proxies only.
``forwarded_middleware`` makes ``request.remote`` that address, so every later reader of
``request.remote`` sees the real client.

Limits count by ``client_network``: an IPv4 address, or the /64 an IPv6 address is in.
One IPv6 host is usually given a whole /64 and may pick any address in it, so counting
by address would give it 2^64 fresh allowances; logs keep the whole address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_HOPS = 32  # addresses read from the right of X-Forwarded-For; beyond, the left-most


IPV6_PREFIX = 64  # the block one IPv6 host (or home network) is given


def client_address(request: web.Request) -> str:
    """The address to log (after ``forwarded_middleware``)."""
    return request.remote or "unknown"


def client_network(request: web.Request) -> str:
    """What the limits count by: the client's IPv4 address, or its IPv6 /64 (written
    ``2001:db8:1:2::/64``); anything unreadable as itself."""
    return network_of(client_address(request))


def network_of(address: str) -> str:
    parsed = _parse(address, zone=True)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed) if parsed is not None else address


def _parse(text: str, *, zone: bool = False) -> Address | None:
    """An address of X-Forwarded-For (or, ``zone=True``, the TCP peer's, whose zone id
    the kernel gave), None when unreadable."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    if "%" in text and not zone:  # a zone id is free text: endless addresses of one
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """Which peers are believed about ``X-Forwarded-For``, and what they say."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)

    def trusted(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: list[str]) -> str | None:
        """The real client address, or None to keep ``peer``."""
        peer_address = _parse(peer, zone=True) if peer else None
        if peer_address is None or not self.trusted(peer_address) or not forwarded_for:
            return None
        hops = [h for value in forwarded_for for h in value.split(",")][-MAX_HOPS:]
        found: Address | None = None
        for hop in reversed(hops):
            address = _parse(hop)
            if address is None:  # garbage from a hop we cannot trust: stop at it
                break
            found = address
            if not self.trusted(address):
                break
        return str(found) if found is not None else None


def forwarded_middleware(proxies: TrustedProxies) -> Middleware:
    """``request.remote`` becomes the real client address for all later handlers."""

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = proxies.client(request.remote,
                                request.headers.getall("X-Forwarded-For", []))
        if client is None or client == request.remote:
            return await handler(request)
        return await handler(request.clone(remote=client))

    return forwarded
