"""The slixmpp client every session drives, tuned for a sending-only gateway.

* TLS: one shared client context; certificate and host name verified by default.
* SCRAM: Hi() is PBKDF2 (RFC 5802, 2.2), computed by hashlib in C, and off the event
  loop in a thread while logging in, instead of slixmpp's HMAC loop in Python (about
  30 ms of CPU per login at 10,000 iterations). The server still checks the proof.
* Text is escaped for XML by a regular expression (slixmpp's own escaping, patched
  process-wide like SCRAM's Hi(), goes one generator step per character).
* Writes of one event-loop turn are coalesced into one TLS record once logged in; TCP
  quick ACKs of what the server writes; no roster and no unused stream-feature plugins.

This module patches slixmpp's SCRAM class and text escaping process-wide, once, on
import.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import importlib
import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slixmpp import ClientXMPP
from slixmpp.features.feature_mechanisms.stanza import Challenge
from slixmpp.util.sasl.mechanisms import SCRAM
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

from xmpp_post.xmpp.stanzas import entities

log = logging.getLogger(__name__)

ACK_TAG = "{urn:xmpp:sm:3}a"


@functools.lru_cache(maxsize=4)
def tls_context(ca_file: Path | None, insecure: bool) -> ssl.SSLContext:
    """One shared client TLS context: certificate and host name verified by default."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _scram_hi(self: Any, text: bytes, salt: bytes, iterations: int) -> bytes:
    """SCRAM's Hi() by hashlib; when the client already computed it off the event loop
    (``Client._sasl_challenge``), that result is used."""
    ready = getattr(self, "xmpp_post_salted", None)
    if ready is not None and ready[0] == (bytes(text), salt, iterations):
        return bytes(ready[1])
    return hashlib.pbkdf2_hmac(self.hash().name, bytes(text), salt, iterations)


SCRAM.Hi = _scram_hi

# The module, not the function of the same name that slixmpp.xmlstream exports.
_TOSTRING: Any = importlib.import_module("slixmpp.xmlstream.tostring")
SLIXMPP_ESCAPE: Callable[[str, bool], str] = _TOSTRING.escape


def _escape(text: str, use_cdata: bool = False) -> str:
    """slixmpp's text escaping, by regular expression instead of one generator step per
    character (the same output: ``tests/test_compose.py``)."""
    return SLIXMPP_ESCAPE(text, use_cdata) if use_cdata else entities(text)


_TOSTRING.escape = _escape


def _socket_of(transport: Any) -> Any:
    return transport.get_extra_info("socket") if transport is not None else None


def _quick_ack(sock: Any) -> None:
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


class Client(ClientXMPP):  # type: ignore[misc]
    """slixmpp's client, with its handler errors routed to our log.

    Once ``outbox`` is a list, everything sent in one turn of the event loop goes out in
    one write (one TLS record, one system call) at the end of that turn, in order:
    stanzas of concurrent requests and their ``<r/>`` no longer cost a write each;
    ``before_flush`` may add to that write; ``flush`` writes at once. Once ``on_ack`` is
    set, the server's XEP-0198 ``<a h=…/>`` answers go to it directly, without a stanza
    object or handler dispatch."""

    outbox: list[bytes] | None = None
    _socket: Any = None
    before_flush: Callable[[list[bytes]], None] | None = None
    on_ack: Callable[[str | None], None] | None = None

    # Stream features a sending-only gateway never uses; leaving them out keeps each of
    # the (possibly thousands of) pooled sessions smaller.
    UNUSED_PLUGINS = frozenset({"feature_rosterver", "feature_preapproval", "feature_limits"})

    def register_plugin(self, plugin: str, *args: Any, **kwargs: Any) -> None:
        if plugin not in self.UNUSED_PLUGINS:
            super().register_plugin(plugin, *args, **kwargs)

    def offload_scram(self) -> None:
        """Answer SASL challenges from a coroutine that runs SCRAM's PBKDF2 in a thread,
        so a login no longer stalls the event loop (hashlib releases the GIL)."""
        self.remove_handler("SASL Challenge")
        self.register_handler(CoroutineCallback(
            "SASL Challenge", MatchXPath(Challenge.tag_name()), self._sasl_challenge))

    async def _sasl_challenge(self, challenge: Any) -> None:
        mechanisms = self.plugin["feature_mechanisms"]
        mech = mechanisms.mech
        if isinstance(mech, SCRAM) and mech.step == 1:
            with contextlib.suppress(Exception):  # malformed: slixmpp's handler says so
                data = mech.parse(challenge["value"])
                salt, rounds = base64.b64decode(data[b"s"]), int(data[b"i"])
                text = bytes(mech.credentials["password"])
                salted = await asyncio.to_thread(hashlib.pbkdf2_hmac, mech.hash().name,
                                                 text, salt, rounds)
                mech.xmpp_post_salted = ((text, salt, rounds), salted)
        mechanisms._handle_challenge(challenge)

    def _handle_session_bind(self, jid: Any) -> None:
        pass  # no roster is kept: the gateway never reads or changes one

    def compact_parser(self) -> None:
        """Swap the stream's XML parser for a fresh one positioned inside the stream.

        The parser keeps buffers as large as the largest read of the login (TLS and SASL
        exchanges, stream features); an idle pooled session does not need them. Called
        once the session is open, when the server owes us nothing mid-stanza."""
        old_root: Any = getattr(self, "xml_root", None)
        self.init_parser()
        assert self.parser is not None
        self.parser.feed(f"<stream:stream xmlns='{self.default_ns}' "
                         f"xmlns:stream='{self.stream_ns}'>")
        fresh_root: Any = None
        for _event, root in self.parser.read_events():
            fresh_root = root
        self.xml_root = fresh_root if fresh_root is not None else old_root
        self.xml_depth = 1

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

    def _spawn_event(self, xml: Any) -> None:
        on_ack = self.on_ack
        if on_ack is not None and xml.tag == ACK_TAG:
            on_ack(xml.get("h"))
            return
        super()._spawn_event(xml)

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
