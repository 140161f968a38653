"""One XMPP client stream for one sender: its lifecycle, and delivering on it.

``XmppSession.open()`` connects, verifies TLS, authenticates with SASL and binds a
random resource, and returns once the stream is ready (no presence is ever sent, so
contacts never see the gateway come online). ``deliver()`` returns a ``Receipt`` only
when the server has confirmed the stanza (``acks.AckTracker``): a bare JID on a group
chat service (``directory.ServiceDirectory``) gets a ``groupchat`` message, sent after
joining the room (``rooms.RoomMemberships``) and confirmed by the room's reflection; a
requested delivery receipt is awaited for ``receipt_timeout`` (``receipts``);
``upload_slot()`` asks the sender's server for a file's upload slot (``upload``). A message
the server refuses (``<message type='error'/>`` before the acknowledgement, or within
``bounce_wait`` after it for a recipient on another domain) raises ``RecipientRefused``
instead (``refusals``). ``encrypt=omemo``: the stanza from ``omemo_devices``.

slixmpp's events are translated here into ``xmpp_post.errors`` (through the table in
``conditions``); the client itself is ``client.Client``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xmpp_post import ids, jids
from xmpp_post.errors import GatewayError, LoginRefused, XmppUnavailable
from xmpp_post.files import FileToSend, UploadSlot
from xmpp_post.locks import KeyedLocks
from xmpp_post.metrics import Metrics
from xmpp_post.model import OutgoingMessage, Receipt, Sender, type_for_target
from xmpp_post.xmpp.acks import AckTracker
from xmpp_post.xmpp.client import Client, sasl_usable, tls_context
from xmpp_post.xmpp.conditions import login_failed
from xmpp_post.xmpp.directory import ServiceDirectory
from xmpp_post.xmpp.omemo_devices import OmemoDevices, encrypted_stanza
from xmpp_post.xmpp.receipts import ReceiptTracker
from xmpp_post.xmpp.refusals import Refusals
from xmpp_post.xmpp.rooms import RoomMemberships
from xmpp_post.xmpp.salted import LoginMemo
from xmpp_post.xmpp.stanzas import message_bytes
from xmpp_post.xmpp.upload import UploadServices, slot_for

log = logging.getLogger(__name__)

NEVER = 2**31  # slixmpp's own periodic <r/> is disabled; acks.AckTracker requests them


@dataclass(frozen=True)
class SessionOptions:
    """How to reach and trust the XMPP server; OMEMO's limits (``omemo_devices``)."""

    server: tuple[str, int] | None = None
    direct_tls: bool = False
    ca_file: Path | None = None
    insecure_skip_tls_verify: bool = False
    connect_timeout: float = 10.0
    ack_timeout: float = 10.0
    retry_after: int = 5
    receipt_timeout: float = 10.0
    bounce_wait: float = 0.0  # after the ack, for recipients on other domains
    omemo_missing: str = "this gateway keeps no OMEMO keys"  # why, without OmemoDevices
    max_stanza_size: int = 256 * 1024  # for encrypted stanzas (their size known once made)


class XmppSession:
    """A logged-in client stream of one sender; see the module docstring."""

    def __init__(self, sender: Sender, options: SessionOptions,
                 directory: ServiceDirectory | None = None,
                 metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 salted: LoginMemo | None = None,
                 omemo: OmemoDevices | None = None) -> None:
        self.jid = sender.jid
        self._omemo = omemo
        self._domain = sender.domain
        self._options = options
        resource = "xmpp-post." + secrets.token_hex(4)
        self._sasl_usable = sasl_usable(sender.password)
        self._client = Client(f"{sender.jid}/{resource}", sender.password,
                              ssl_context=tls_context(options.ca_file,
                                                      options.insecure_skip_tls_verify))
        self._client.enable_direct_tls = options.direct_tls
        self._client.enable_starttls = not options.direct_tls
        self._client.enable_plaintext = False
        self._client.register_plugin("xep_0198", {"window": NEVER, "allow_resume": False})
        self._client.offload_scram()
        self._client.salted_memo = self._salted = salted
        self._opened: asyncio.Future[None] | None = None
        self._alive = False
        self._closing = False
        self._delivering = 0
        self._failure_reason = "connection failed"
        self._acks = AckTracker(self._client, timeout=options.ack_timeout,
                                retry_after=options.retry_after, on_failure=self._ack_failure)
        self._directory = directory if directory is not None else ServiceDirectory()
        self._rooms = RoomMemberships(self._client, options.ack_timeout, clock)
        self._receipts = ReceiptTracker(self._client)
        self._refusals = Refusals(self._client, retry_after=options.retry_after,
                                  observe=metrics.count_refusal if metrics else None)
        self._chosen_ids = KeyedLocks()  # (bare recipient, client-chosen id) in flight
        self._wire_events()

    # lifecycle -------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def in_flight(self) -> int:
        # Deliveries also wait on rooms and receipts, outside the ack bookkeeping.
        return max(self._acks.pending, self._delivering)

    @property
    def uses_stream_management(self) -> bool:
        return self._acks.uses_sm

    @property
    def encrypted(self) -> bool:
        """Whether the stream runs over TLS (STARTTLS or direct TLS)."""
        return self._encrypted()

    @property
    def rooms(self) -> dict[str, str]:
        """The rooms this session is in: room JID -> our nick in it."""
        return self._rooms.rooms

    async def open(self) -> None:
        """Connect and log in; raise LoginRefused or XmppUnavailable on failure."""
        if not self._sasl_usable:  # no server could accept it: no connection either
            raise LoginRefused("the password has characters SASL does not allow (SASLprep, "
                               "RFC 4013)", condition="not-authorized")
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
            self._forget_salted()
            raise self._unavailable(f"no XMPP session within {self._options.connect_timeout:g} s "
                                    f"({self._failure_reason})", "connect_timeout") from None
        except GatewayError:
            self._abort()
            self._forget_salted()
            raise
        if self._salted is not None:  # the server accepted our proof and proved itself
            self._salted.confirmed()
        self._alive = True
        self._client.outbox = []
        self._client.compact_parser()
        self._acks.start(uses_sm="stream_management" in self._client.features)
        log.info("session opened for %s (acknowledgement by %s)", self.jid,
                 "stream management" if self._acks.uses_sm else "ping")

    async def close(self, wait: float = 2.0) -> None:
        """End the stream cleanly; idempotent. In-flight stanzas are failed as unavailable."""
        if self._closing:
            return
        self._closing = True
        was_alive, self._alive = self._alive, False
        self._acks.active = False
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

    def _forget_salted(self) -> None:
        """A failed login drops the account's SaltedPassword: if it was used, the server
        refused it or did not prove itself; if not, nothing is lost."""
        if self._salted is not None:
            self._salted.refused()

    def _abort(self) -> None:
        self._alive = self._acks.active = False
        self._closing = True
        self._client.cancel_connection_attempt()
        self._client.abort()
        self._release()

    def _ack_failure(self, why: str) -> None:
        log.warning("%s for %s; closing the session", why, self.jid)
        self._abort()

    def _release(self) -> None:
        """Stop the tasks this session owns: slixmpp's send loop and any ping barrier.
        A session is never reconnected, so nothing may outlive its stream."""
        self._client.stop_send_loop()
        self._acks.release()

    # sending ---------------------------------------------------------------------------

    async def deliver(self, message: OutgoingMessage) -> Receipt:
        """Send one message (joining its room first if it goes to one) and wait for proof."""
        if not self._alive:
            raise self._unavailable("the XMPP session is closed", "session_closed")
        self._delivering += 1
        try:
            return await self._deliver(message)
        finally:
            self._delivering -= 1

    async def _deliver(self, message: OutgoingMessage) -> Receipt:
        kind = message.type
        if jids.is_bare(message.to):
            is_room = await self._directory.is_group_chat_service(
                jids.domain_of(message.to), self._rooms.is_service)
            kind = type_for_target(message, is_room)
        nick = None
        if kind == "groupchat":
            nick = await self._rooms.ensure_joined(message.to, message.nick or
                                                   jids.local_of(self.jid),
                                                   message.room_password)
        if message.id is None:
            return await self._send(message, kind, nick, ids.stanza_id())
        # A client-chosen id may repeat: one message per (recipient, id) is in flight at
        # a time, so that an error carrying that id names exactly one message (errors
        # come from the recipient's address, matched by its bare JID).
        async with self._chosen_ids.hold((jids.bare_of(message.to), message.id)):
            return await self._send(message, kind, nick, message.id)

    async def _send(self, message: OutgoingMessage, kind: str, nick: str | None,
                    stanza_id: str) -> Receipt:
        data = (await encrypted_stanza(self._omemo, self._options, self.jid, self._client,
                                       message, kind, stanza_id) if message.encrypt == "omemo"
                else message_bytes(message, kind, stanza_id, self._client.default_lang))
        if not self._alive:  # it may have closed while the room was joined
            raise self._unavailable("the XMPP session is closed", "session_closed")
        echo = self._rooms.expect_echo(message.to, stanza_id) if nick is not None else None
        # A room answers for its messages itself (its reflection, or its error).
        watch = self._refusals.watch(message.to, stanza_id) if echo is None else None
        receipt = self._receipts.expect(message.to, stanza_id) if message.receipt else None
        elsewhere = jids.domain_of(jids.bare_of(message.to)) != self._domain
        try:
            await self._acks.send(data, stanza_id)
            if watch is not None:
                await self._refusals.settle(
                    watch, self._options.bounce_wait if elsewhere else 0.0)
            if echo is not None:
                await self._rooms.wait_echo(message.to, stanza_id, echo)
        except BaseException:
            if echo is not None:
                self._rooms.forget_echo(message.to, stanza_id, echo)
            if receipt is not None:
                self._receipts.cancel(message.to, stanza_id, receipt)
            raise
        finally:
            if watch is not None:
                self._refusals.release(watch, remember=elsewhere)
        state = None
        if receipt is not None:
            state = await self._receipts.wait(message.to, stanza_id, receipt,
                                              self._options.receipt_timeout)
        return Receipt(id=stanza_id, sender=self.jid, to=message.to, type=kind, nick=nick,
                       receipt=state)

    async def upload_slot(self, file: FileToSend, services: UploadServices) -> UploadSlot:
        """A XEP-0363 slot for ``file`` from the sender's server (``upload``)."""
        if not self._alive:
            raise self._unavailable("the XMPP session is closed", "session_closed")
        self._delivering += 1
        try:
            return await slot_for(self._client, self._domain, file, services,
                                  self._options.ack_timeout, self._options.retry_after)
        finally:
            self._delivering -= 1

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
        condition = (failure["condition"] if failure is not None else "") or ""
        self._failure_reason = f"authentication failed ({condition})"
        self._settle(login_failed(condition, self._options.retry_after))
        self._abort()

    def _on_no_mechanism(self, _event: Any) -> None:
        if not self._encrypted():
            log.error("XMPP server for %s offered no TLS; refusing to log in", self.jid)
            self._settle(self._unavailable("the XMPP server offered no TLS; the gateway "
                                           "refuses to send credentials in clear",
                                           "tls_required"))
        else:
            self._settle(login_failed("", self._options.retry_after))
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
        self._alive = self._acks.active = False
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
        self._acks.fail_all(self._unavailable(why, code))

    def _unavailable(self, message: str, code: str) -> XmppUnavailable:
        return XmppUnavailable(message, code=code, retry_after=self._options.retry_after)
