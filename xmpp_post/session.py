"""One XMPP client stream for one sender, on slixmpp; the only module that drives it.

``XmppSession.open()`` connects, verifies TLS, authenticates with SASL and binds a
random resource, and returns once the stream is ready (no presence is ever sent, so
contacts never see the gateway come online). ``send()`` returns only when the server has
confirmed the stanza:

* with stream management (XEP-0198) the server's ``<a h=…/>`` covers it;
* otherwise an XMPP ping (XEP-0199) sent after it has been answered, which the server
  can only do after processing everything before it on the stream.

Acknowledgement requests are batched: with stream management, one ``<r/>`` follows the
stanzas sent in one turn of the event loop, whether or not earlier ones were answered;
with the ping fallback, while one ping is outstanding new stanzas wait for the next, which
goes out as soon as the answer arrives. Acks are tracked by an internal key per stanza, so
client-chosen stanza ids may repeat. slixmpp's
errors and events are translated here into ``xmpp_post.errors``.

``deliver()`` is ``send()`` with the richer outcome (``Sent``): a bare JID on a group chat
service (``rooms.ServiceDirectory``) gets a ``groupchat`` message, sent after joining the
room (``rooms.RoomMemberships``) and confirmed by the room's reflection; a requested
delivery receipt is awaited for ``receipt_timeout`` (``receipts.ReceiptTracker``). The
helper modules compose.py, rooms.py and receipts.py also use slixmpp, on this client.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import logging
import secrets
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.features.feature_mechanisms.stanza import Challenge
from slixmpp.plugins.xep_0198 import stanza as sm_stanza
from slixmpp.util.sasl.mechanisms import SCRAM
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

from xmpp_post import jids
from xmpp_post.compose import message_stanza
from xmpp_post.errors import (
    AckTimeout,
    BadRequest,
    GatewayError,
    NotFound,
    Unauthorized,
    XmppUnavailable,
)
from xmpp_post.receipts import ReceiptTracker
from xmpp_post.request import Credentials, OutgoingMessage
from xmpp_post.rooms import RoomMemberships, ServiceDirectory

log = logging.getLogger(__name__)

PING_NS = "urn:xmpp:ping"
NEVER = 2**31  # slixmpp's own periodic <r/> is disabled; we request acks ourselves


@dataclass(frozen=True)
class SessionOptions:
    """How to reach and trust the XMPP server."""

    server: tuple[str, int] | None = None
    direct_tls: bool = False
    ca_file: Path | None = None
    insecure_skip_tls_verify: bool = False
    connect_timeout: float = 10.0
    ack_timeout: float = 10.0
    retry_after: int = 5
    receipt_timeout: float = 10.0


@dataclass(frozen=True)
class Sent:
    """What ``deliver()`` achieved: the stanza id, the type sent, the nick used in a room,
    and, when a receipt was requested, ``received`` or ``timeout``."""

    id: str
    type: str
    nick: str | None = None
    receipt: str | None = None


@functools.lru_cache(maxsize=4)
def tls_context(ca_file: Path | None, insecure: bool) -> ssl.SSLContext:
    """One shared client TLS context: certificate and host name verified by default."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _scram_hi(self: Any, text: bytes, salt: bytes, iterations: int) -> bytes:
    """SCRAM's Hi() is PBKDF2 (RFC 5802, 2.2): computed by hashlib in C, not in Python.

    slixmpp iterates HMAC in Python, about 30 ms of CPU per login at 10,000 iterations;
    the result is the same, the server still checks the proof. When the session already
    computed it off the event loop (``_Client._sasl_challenge``), that result is used."""
    ready = getattr(self, "xmpp_post_salted", None)
    if ready is not None and ready[0] == (bytes(text), salt, iterations):
        return bytes(ready[1])
    return hashlib.pbkdf2_hmac(self.hash().name, bytes(text), salt, iterations)


SCRAM.Hi = _scram_hi


def _quick_ack(transport: Any) -> None:
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


class _Client(ClientXMPP):  # type: ignore[misc]
    """slixmpp's client, with its handler errors routed to our log.

    Once ``outbox`` is a list, everything sent in one turn of the event loop goes out in
    one write (one TLS record, one system call) at the end of that turn, in order:
    stanzas of concurrent requests and their ``<r/>`` no longer cost a write each."""

    outbox: list[bytes] | None = None

    # Stream features a sending-only gateway never uses; leaving them out keeps each of
    # the (possibly thousands of) pooled sessions smaller.
    UNUSED_PLUGINS = frozenset({"feature_rosterver", "feature_preapproval", "feature_limits"})

    def register_plugin(self, plugin: str, *args: Any, **kwargs: Any) -> None:
        if plugin not in self.UNUSED_PLUGINS:
            super().register_plugin(plugin, *args, **kwargs)

    def offload_scram(self) -> None:
        """Answer SASL challenges from a coroutine that runs SCRAM's PBKDF2 in a thread.

        PBKDF2 is most of a login's CPU (a few ms at 10,000 iterations); in a thread it
        no longer stalls the event loop, so other requests and logins go on meanwhile
        (hashlib releases the GIL while it runs)."""
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
        _quick_ack(transport)
        super().connection_made(transport, send_event)

    def data_received(self, data: bytes | str) -> None:
        if self.outbox is None:
            # While logging in, acknowledge the server's segments at once: servers that
            # write with Nagle's algorithm (Prosody's default) otherwise hold their TLS
            # 1.3 session tickets and replies until our delayed ACK, ~40 ms per login.
            _quick_ack(self.transport)
        super().data_received(data)

    def send_raw(self, data: str | bytes) -> None:
        outbox = self.outbox
        if outbox is None or self.transport is None:
            super().send_raw(data)
            return
        outbox.append(data.encode("utf-8") if isinstance(data, str) else data)
        if len(outbox) == 1:
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        outbox = self.outbox
        if not outbox:
            return
        data = b"".join(outbox)
        outbox.clear()
        if self.transport is not None:
            self.transport.write(data)


class XmppSession:
    """A logged-in client stream of one sender; see the module docstring."""

    def __init__(self, credentials: Credentials, options: SessionOptions,
                 directory: ServiceDirectory | None = None) -> None:
        self.jid = credentials.jid
        self._options = options
        resource = "xmpp-post." + secrets.token_hex(4)
        self._client = _Client(f"{credentials.jid}/{resource}", credentials.password,
                               ssl_context=tls_context(options.ca_file,
                                                       options.insecure_skip_tls_verify))
        self._client.enable_direct_tls = options.direct_tls
        self._client.enable_starttls = not options.direct_tls
        self._client.enable_plaintext = False
        self._client.register_plugin("xep_0198", {"window": NEVER, "allow_resume": False})
        self._client.offload_scram()
        self._opened: asyncio.Future[None] | None = None
        self._alive = False
        self._closing = False
        self._uses_sm = False
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._keys: dict[int, str] = {}  # id() of a stanza awaiting its ack -> internal key
        self._delivering = 0
        self._unrequested: list[str] = []
        self._ack_requested = False
        self._sm_request_due = False
        self._barrier: asyncio.Task[None] | None = None
        self._failure_reason = "connection failed"
        self._directory = directory if directory is not None else ServiceDirectory()
        self._rooms = RoomMemberships(self._client, options.ack_timeout)
        self._receipts = ReceiptTracker(self._client)
        self._wire_events()

    # lifecycle -------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def in_flight(self) -> int:
        # Deliveries also wait on rooms and receipts, outside the ack bookkeeping.
        return max(len(self._pending), self._delivering)

    @property
    def uses_stream_management(self) -> bool:
        return self._uses_sm

    async def open(self) -> None:
        """Connect and log in; raise Unauthorized or XmppUnavailable on failure."""
        loop = asyncio.get_running_loop()
        self._opened = loop.create_future()
        # An outcome that arrives after open() gave up (timeout) is not an error to report.
        self._opened.add_done_callback(lambda done: done.cancelled() or done.exception())
        server = self._options.server
        self._client.connect(*(server or (None, None)))
        try:
            await asyncio.wait_for(asyncio.shield(self._opened),
                                   self._options.connect_timeout)
        except TimeoutError:
            self._abort()
            raise self._unavailable(f"no XMPP session within {self._options.connect_timeout:g} s "
                                    f"({self._failure_reason})", "connect_timeout") from None
        except GatewayError:
            self._abort()
            raise
        self._alive = True
        self._client.outbox = []
        self._client.compact_parser()
        self._uses_sm = "stream_management" in self._client.features
        log.info("session opened for %s (acknowledgement by %s)", self.jid,
                 "stream management" if self._uses_sm else "ping")

    async def close(self, wait: float = 2.0) -> None:
        """End the stream cleanly; idempotent. In-flight stanzas are failed as unavailable."""
        if self._closing:
            return
        self._closing = True
        was_alive, self._alive = self._alive, False
        if was_alive:
            await self._rooms.leave_all(wait / 2)
        self._client.cancel_connection_attempt()
        if self._client.transport is not None:
            try:
                await asyncio.wait_for(self._client.disconnect(wait=wait), wait + 1.0)
                log.info("session of %s closed cleanly", self.jid)
            except (TimeoutError, OSError):
                log.warning("session of %s did not close in time; connection dropped",
                            self.jid)
                self._client.abort()
        self._fail_pending("the session was closed before the server acknowledged")
        self._release()

    def _abort(self) -> None:
        self._alive = False
        self._closing = True
        self._client.cancel_connection_attempt()
        self._client.abort()
        self._release()

    def _release(self) -> None:
        """Stop the tasks this session owns: slixmpp's send loop and any ping barrier.
        A session is never reconnected, so nothing may outlive its stream."""
        sender = self._client._run_out_filters
        if sender is not None and not sender.done():
            sender.cancel()
        if self._barrier is not None:
            self._barrier.cancel()

    # sending ---------------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> str:
        """Send one message and wait for the server's acknowledgement; return its id."""
        return (await self.deliver(message)).id

    async def deliver(self, message: OutgoingMessage) -> Sent:
        """Send one message (joining its room first if it goes to one) and wait for proof."""
        if not self._alive:
            raise self._unavailable("the XMPP session is closed", "session_closed")
        self._delivering += 1
        try:
            return await self._deliver(message)
        finally:
            self._delivering -= 1

    async def _deliver(self, message: OutgoingMessage) -> Sent:
        kind = await self._type_for(message)
        nick = None
        if kind == "groupchat":
            nick = await self._rooms.ensure_joined(message.to, message.nick or
                                                   jids.local_of(self.jid),
                                                   message.room_password)
        stanza_id = message.id or secrets.token_hex(8)
        stanza = message_stanza(self._client, message, kind, stanza_id)
        echo = self._rooms.expect_echo(message.to, stanza_id) if nick is not None else None
        receipt = self._receipts.expect(message.to, stanza_id) if message.receipt else None
        try:
            await self._send_acknowledged(stanza)
            if echo is not None:
                await self._rooms.wait_echo(message.to, stanza_id, echo)
        except BaseException:
            if echo is not None:
                self._rooms.forget_echo(message.to, stanza_id, echo)
            if receipt is not None:
                self._receipts.cancel(message.to, stanza_id, receipt)
            raise
        state = None
        if receipt is not None:
            state = await self._receipts.wait(message.to, stanza_id, receipt,
                                              self._options.receipt_timeout)
        return Sent(id=stanza_id, type=kind, nick=nick, receipt=state)

    async def _type_for(self, message: OutgoingMessage) -> str:
        """``groupchat`` for a room (a bare JID on a group chat service), else as asked."""
        if not jids.is_bare(message.to):
            return message.type
        domain = jids.domain_of(message.to)
        is_room = await self._directory.is_group_chat_service(domain, self._rooms.is_service)
        if message.type == "groupchat" and not is_room:
            raise NotFound(f"{message.to} is not a room: {domain} is not a group chat service",
                           code="room_not_found")
        if is_room and message.explicit_type and message.type != "groupchat":
            raise BadRequest(f"{message.to} is a room: send it type groupchat (or no type), "
                             f"not {message.type}", code="invalid_type")
        if is_room and message.receipt:
            raise BadRequest("delivery receipts cannot be requested for group chat messages",
                             code="invalid_receipt")
        return "groupchat" if is_room else message.type

    async def _send_acknowledged(self, stanza: Any) -> None:
        """Write the stanza and wait for the server to confirm it (see the module docstring)."""
        stanza_id = secrets.token_hex(8)  # the internal key: client ids may repeat
        self._keys[id(stanza)] = stanza_id
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[stanza_id] = done
        try:
            stanza.send()
            self._request_ack(stanza_id)
            await asyncio.wait_for(asyncio.shield(done), self._options.ack_timeout)
        except TimeoutError:
            log.warning("no acknowledgement from the server for %s within %g s; "
                        "closing the session", self.jid, self._options.ack_timeout)
            self._abort()
            raise AckTimeout(f"the XMPP server did not acknowledge within "
                             f"{self._options.ack_timeout:g} s",
                             retry_after=self._options.retry_after) from None
        finally:
            self._pending.pop(stanza_id, None)
            self._keys.pop(id(stanza), None)

    def _request_ack(self, stanza_id: str) -> None:
        if self._uses_sm:
            # One <r/> per event-loop turn, queued behind every stanza sent in that turn;
            # earlier <r/>s may still be unanswered (the server answers each in order).
            if not self._sm_request_due:
                self._sm_request_due = True
                asyncio.get_running_loop().call_soon(self._send_sm_request)
            return
        if self._ack_requested:
            self._unrequested.append(stanza_id)
            return
        self._ack_requested = True
        self._start_barrier([stanza_id])

    def _send_sm_request(self) -> None:
        self._sm_request_due = False
        if self._alive:
            self._client.send(sm_stanza.RequestAck(self._client))

    def _on_stanza_acked(self, stanza: Any) -> None:
        done = self._pending.get(self._keys.get(id(stanza), ""))
        if done is not None and not done.done():
            done.set_result(None)

    def _start_barrier(self, batch: list[str]) -> None:
        self._barrier = asyncio.ensure_future(self._ping_barrier(batch))

    async def _ping_barrier(self, batch: list[str]) -> None:
        iq = self._client.Iq()
        iq["type"] = "get"
        iq["to"] = self._client.boundjid.domain
        iq.append(ET.Element(f"{{{PING_NS}}}ping"))
        try:
            await iq.send(timeout=self._options.ack_timeout)
        except IqError:
            pass  # an error reply still proves the server processed what came before
        except (IqTimeout, asyncio.CancelledError):
            return
        for stanza_id in batch:
            done = self._pending.get(stanza_id)
            if done is not None and not done.done():
                done.set_result(None)
        self._ack_requested = False
        if self._unrequested and self._alive:
            next_batch, self._unrequested = self._unrequested, []
            self._ack_requested = True
            self._start_barrier(next_batch)

    # events ----------------------------------------------------------------------------

    def _wire_events(self) -> None:
        client = self._client
        handlers: dict[str, Callable[[Any], None]] = {
            "stream_negotiated": self._on_negotiated,
            "failed_auth": self._on_failed_auth,
            "failed_all_auth": self._on_no_mechanism,
            "ssl_invalid_chain": self._on_bad_certificate,
            "connection_failed": self._on_connection_failed,
            "reconnect_delay": self._on_reconnect_delay,
            "stream_error": self._on_stream_error,
            "disconnected": self._on_disconnected,
            "stanza_acked": self._on_stanza_acked,
        }
        for event, handler in handlers.items():
            client.add_event_handler(event, handler)

    def _settle(self, error: GatewayError | None) -> None:
        if self._opened is not None and not self._opened.done():
            if error is None:
                self._opened.set_result(None)
            else:
                self._opened.set_exception(error)

    def _encrypted(self) -> bool:
        return "starttls" in self._client.features or isinstance(
            self._client.socket, (ssl.SSLSocket, ssl.SSLObject))

    def _on_negotiated(self, _event: Any) -> None:
        if not self._client.sessionstarted:
            return
        if not self._encrypted():
            self._failure_reason = "the stream is not encrypted"
            self._settle(self._unavailable("the XMPP stream is not encrypted", "tls_required"))
            return
        self._settle(None)

    def _on_failed_auth(self, failure: Any) -> None:
        condition = failure["condition"] if failure is not None else ""
        self._failure_reason = f"authentication failed ({condition})"
        if condition in ("temporary-auth-failure", "aborted"):
            self._settle(self._unavailable("the XMPP server could not check the password "
                                           "right now", "auth_unavailable"))
        else:
            self._settle(Unauthorized("the XMPP server rejected the credentials",
                                      code="invalid_credentials"))
        self._abort()

    def _on_no_mechanism(self, _event: Any) -> None:
        if not self._encrypted():
            log.error("XMPP server for %s offered no TLS; refusing to log in", self.jid)
            self._settle(self._unavailable("the XMPP server offered no TLS; the gateway "
                                           "refuses to send credentials in clear",
                                           "tls_required"))
        else:
            self._settle(Unauthorized("the XMPP server rejected the credentials",
                                      code="invalid_credentials"))
        self._abort()

    def _on_bad_certificate(self, error: Any) -> None:
        if self._failure_reason.startswith("certificate rejected"):
            return  # already reported when the connection closed
        log.error("TLS certificate of the XMPP server for %s rejected: %s", self.jid, error)
        self._failure_reason = f"certificate rejected: {error}"
        self._settle(self._unavailable("the XMPP server's TLS certificate could not be "
                                       "verified", "tls_failed"))
        self._abort()

    def _on_connection_failed(self, error: Any) -> None:
        self._failure_reason = str(error)
        if isinstance(error, ssl.SSLError):
            log.error("TLS to the XMPP server for %s failed: %s", self.jid, error)
            self._settle(self._unavailable("TLS to the XMPP server failed", "tls_failed"))
            self._abort()

    def _on_reconnect_delay(self, _delay: Any) -> None:
        # slixmpp tried every address and would now back off and retry; we answer instead.
        log.warning("cannot reach the XMPP server for %s: %s", self.jid, self._failure_reason)
        self._settle(self._unavailable(f"cannot reach the XMPP server ({self._failure_reason})",
                                       "xmpp_unreachable"))
        self._abort()

    def _on_stream_error(self, error: Any) -> None:
        condition = error["condition"] if error is not None else "unknown"
        text = error["text"] if error is not None else ""
        self._failure_reason = f"stream error {condition}"
        log.warning("XMPP stream error for %s: %s %s", self.jid, condition, text)
        self._settle(self._unavailable(f"the XMPP server ended the stream ({condition})",
                                       "stream_error"))

    def _on_disconnected(self, reason: Any) -> None:
        was_alive = self._alive
        self._alive = False
        if isinstance(reason, ssl.SSLError) and not self._open_settled():
            # A failed TLS handshake closes the connection before slixmpp reports it.
            self._on_bad_certificate(reason)
        self._settle(self._unavailable(f"the XMPP server closed the connection "
                                       f"({self._failure_reason})", "xmpp_disconnected"))
        self._client.cancel_connection_attempt()
        self._fail_pending("the connection to the XMPP server was lost before it acknowledged")
        self._rooms.reset(self._unavailable("the connection to the XMPP server was lost",
                                            "xmpp_disconnected"))
        if was_alive and not self._closing:
            log.info("session of %s lost: %s", self.jid, reason or "connection closed")
        self._release()

    def _open_settled(self) -> bool:
        return self._opened is None or self._opened.done()

    def _fail_pending(self, why: str) -> None:
        code = "xmpp_disconnected"
        if self._failure_reason.startswith("stream error"):
            # e.g. policy-violation for a stanza over the server's size limit
            code, why = "stream_error", f"{why} ({self._failure_reason})"
        for done in self._pending.values():
            if not done.done():
                done.set_exception(self._unavailable(why, code))
        self._unrequested.clear()
        self._ack_requested = False

    def _unavailable(self, message: str, code: str) -> XmppUnavailable:
        return XmppUnavailable(message, code=code, retry_after=self._options.retry_after)
