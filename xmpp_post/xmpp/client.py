"""The slixmpp client every session drives, tuned for a sending-only gateway.

* TLS: one shared client context; certificate and host name verified by default.
* A password SASLprep (RFC 4013) refuses is known before connecting (``sasl_usable``):
  slixmpp would log an error and drop the stream in the middle of the login.
* Writes of one event-loop turn are coalesced into one TLS record once logged in; TCP
  quick ACKs of what the server writes; no unused stream-feature plugins.
* Through ``compat.ClientBase`` (every use of slixmpp's private API, checked at start):
  SCRAM's PBKDF2 in C and off the event loop (skipped for a returning sender whose
  SaltedPassword is kept, ``salted``), XML escaping by regular expression, no
  roster, acknowledgements without stanza objects, a fresh parser once logged in.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slixmpp.util.sasl.client import saslprep
from slixmpp.util.stringprep_profiles import StringPrepError

from xmpp_post.xmpp.compat import ClientBase

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def tls_context(ca_file: Path | None, insecure: bool) -> ssl.SSLContext:
    """One shared client TLS context: certificate and host name verified by default."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def sasl_usable(password: str) -> bool:
    """Whether SASL can present ``password``: it passes SASLprep (no control characters,
    no unassigned or prohibited code points), as every mechanism requires."""
    try:
        saslprep(password)
    except StringPrepError:
        return False
    return True


def _socket_of(transport: Any) -> Any:
    return transport.get_extra_info("socket") if transport is not None else None


def _quick_ack(sock: Any) -> None:
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


class Client(ClientBase):
    """slixmpp's client, with its handler errors routed to our log.

    Once ``outbox`` is a list, everything sent in one turn of the event loop goes out in
    one write (one TLS record, one system call) at the end of that turn, in order:
    stanzas of concurrent requests and their ``<r/>`` no longer cost a write each;
    ``before_flush`` may add to that write; ``flush`` writes at once."""

    outbox: list[bytes] | None = None
    _socket: Any = None
    before_flush: Callable[[list[bytes]], None] | None = None

    # Stream features a sending-only gateway never uses; leaving them out keeps each of
    # the (possibly thousands of) pooled sessions smaller.
    UNUSED_PLUGINS = frozenset({"feature_rosterver", "feature_preapproval", "feature_limits"})

    def register_plugin(self, plugin: str, *args: Any, **kwargs: Any) -> None:
        if plugin not in self.UNUSED_PLUGINS:
            super().register_plugin(plugin, *args, **kwargs)

    def exception(self, exception: Exception) -> None:
        log.error("error in XMPP handler: %r", exception)

    def connection_made(self, transport: Any, send_event: bool = True) -> None:
        self._socket = _socket_of(transport)
        _quick_ack(self._socket)
        super().connection_made(transport, send_event)

    def data_received(self, data: bytes | str) -> None:
        # Acknowledge the server's segments at once: servers that write with Nagle's
        # algorithm (Prosody's default) otherwise hold their next write until our delayed
        # ACK: TLS 1.3 session tickets and replies while logging in (~40 ms a login), and
        # acknowledgements <a/> of busy streams (the slowest messages' latency).
        _quick_ack(self._socket)
        super().data_received(data)

    def send_raw(self, data: str | bytes) -> None:
        outbox = self.outbox
        if outbox is None or self.transport is None:
            super().send_raw(data)
            # While logging in and closing: a write puts Linux's TCP in its interactive
            # mode, which delays our next ACK (up to 40 ms); a server writing with Nagle's
            # algorithm then holds its answer until that ACK. The TLS 1.3 session ticket
            # Prosody sends after the handshake carries no XML (so ``data_received`` does
            # not quick-ACK it), and its answer to our stream header waited behind it:
            # ~40 ms per login whenever logins overlapped.
            _quick_ack(self._socket)
            return
        outbox.append(data.encode("utf-8") if isinstance(data, str) else data)
        if len(outbox) == 1:
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what the outbox holds now, not at the end of this turn of the loop."""
        outbox = self.outbox
        if not outbox:
            return
        if self.before_flush is not None:
            self.before_flush(outbox)
        data = b"".join(outbox)
        outbox.clear()
        if self.transport is not None:
            self.transport.write(data)
