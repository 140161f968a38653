"""The real ``Relay``: one pooled XMPP session per sender.

``XmppRelay.deliver`` is bounded by ``request_timeout`` as a whole, however long it
queues behind another request's session opening: time running out before the message
was written is 503 ``request_timeout`` (nothing was sent; retry), after it 504 (the
server may or may not have it; retry with the same ``Idempotency-Key``).

A message whose stanza would exceed the server's limit (``max_stanza_size``, measured as
the server will read it: ``compose.wire_size``) is refused 413 before any session is
used: the server would end the stream for it, failing every message in flight on it.
An error raised once the sender's session is open is marked ``verified``: the server had
accepted the password. ``login`` opens (or reuses) the sender's session alone, within a
``request_timeout`` of its own. ``preview`` is the stanza ``compose`` would write.

``upload`` puts a file on the sender's server (XEP-0363): a session within
``request_timeout``, then the slot (``upload``) and the HTTPS PUT (the ``files.Uploader``
``service`` injects: this side imports no HTTP library) within ``upload_timeout``; time
running out is 502 ``upload_failed``. The upload services found are shared by every
session (``UploadServices``), and ``known_file_limit`` tells the HTTP side the limit a
domain's service advertised, once known, without asking.
"""

from __future__ import annotations

import asyncio

from xmpp_post.deadlines import Deadlines
from xmpp_post.errors import (
    AckTimeout,
    GatewayError,
    PayloadTooLarge,
    UploadFailed,
    UploadUnavailable,
    XmppUnavailable,
)
from xmpp_post.files import FileToSend, UploadedFile, Uploader
from xmpp_post.model import OutgoingMessage, Receipt, Sender, SessionInfo
from xmpp_post.xmpp import compat
from xmpp_post.xmpp.directory import ServiceDirectory
from xmpp_post.xmpp.omemo_devices import OmemoDevices
from xmpp_post.xmpp.omemo_files import aesgcm_url, discard, encrypted_copy
from xmpp_post.xmpp.pool import SessionPool
from xmpp_post.xmpp.salted import SaltedPasswords
from xmpp_post.xmpp.stanzas import preview, wire_size
from xmpp_post.xmpp.upload import UploadServices

DEFAULT_MAX_STANZA = 256 * 1024  # Prosody's c2s_stanza_size_limit; ejabberd's shipped one


class XmppRelay:
    """Deliver through one pooled XMPP session per sender."""

    def __init__(self, pool: SessionPool, *, request_timeout: float = 15.0,
                 retry_after: int = 5, max_stanza_size: int = DEFAULT_MAX_STANZA,
                 directory: ServiceDirectory | None = None,
                 uploader: Uploader | None = None, upload_timeout: float = 120.0,
                 uploads: UploadServices | None = None,
                 salted: SaltedPasswords | None = None,
                 omemo: OmemoDevices | None = None) -> None:
        self.pool = pool
        self.directory = directory  # shared by the pool's sessions (for observation)
        self.salted = salted  # the sessions' SCRAM SaltedPasswords (for observation)
        self.omemo = omemo  # the sessions' OMEMO devices (stopped with the relay)
        self._timeout = request_timeout
        self._deadlines = Deadlines(request_timeout)  # one per request, no timer each
        self._retry_after = retry_after
        self._max_stanza_size = max_stanza_size
        self._uploader = uploader
        self._upload_timeout = upload_timeout
        self.uploads = uploads if uploads is not None else UploadServices()

    def _check_size(self, message: OutgoingMessage) -> None:
        size = wire_size(message)
        if size > self._max_stanza_size:
            raise PayloadTooLarge(
                f"the message would be a stanza of up to {size} bytes once encoded as XML "
                f"(text escaped, UTF-8); the XMPP server takes at most "
                f"{self._max_stanza_size}", code="stanza_too_large")

    async def deliver(self, sender: Sender, message: OutgoingMessage) -> Receipt:
        self._check_size(message)
        sending = False
        try:
            async with self._deadlines.within():
                session = await self.pool.session_for(sender)
                sending = True
                return await session.deliver(message)
        except TimeoutError:
            if sending:
                raise AckTimeout(f"no acknowledgement within the request timeout of "
                                 f"{self._timeout:g} s", code="request_timeout",
                                 retry_after=self._retry_after) from None
            raise XmppUnavailable(f"no XMPP session within the request timeout of "
                                  f"{self._timeout:g} s", code="request_timeout",
                                  retry_after=self._retry_after) from None
        except GatewayError as error:
            error.verified = sending  # the session was open: the password was accepted
            raise

    def verified(self, sender: Sender) -> bool:
        return self.pool.verified(sender)

    async def login(self, sender: Sender) -> None:
        try:
            async with self._deadlines.within():
                await self.pool.session_for(sender)
        except TimeoutError:
            raise XmppUnavailable(f"no XMPP session within the request timeout of "
                                  f"{self._timeout:g} s", code="request_timeout",
                                  retry_after=self._retry_after) from None

    def preview(self, message: OutgoingMessage) -> str:
        self._check_size(message)  # refused here as it would be when sent
        return preview(message)

    def sessions(self) -> list[SessionInfo]:
        return self.pool.describe()

    async def upload(self, sender: Sender, file: FileToSend,
                     encrypt: bool = False) -> UploadedFile:
        """Put ``file`` on the sender's upload service; its download URL once it is there
        (``encrypt``: its ciphertext, and the ``aesgcm://`` URL, ``omemo_files``)."""
        if self._uploader is None:
            raise UploadUnavailable("this gateway uploads no files")
        if not encrypt:
            return await self._upload(sender, file)
        sealed, fragment = await encrypted_copy(file)
        try:
            done = await self._upload(sender, sealed)
        finally:
            discard(sealed.path)
        return UploadedFile(name=file.name, size=file.size, content_type=file.content_type,
                            url=aesgcm_url(done.url, fragment))

    async def _upload(self, sender: Sender, file: FileToSend) -> UploadedFile:
        assert self._uploader is not None
        verified = False
        try:
            async with self._deadlines.within():
                session = await self.pool.session_for(sender)
            verified = True
            async with asyncio.timeout(self._upload_timeout):
                slot = await session.upload_slot(file, self.uploads)
                await self._uploader.put(slot, file)
        except TimeoutError:
            if not verified:
                raise XmppUnavailable(f"no XMPP session within the request timeout of "
                                      f"{self._timeout:g} s", code="request_timeout",
                                      retry_after=self._retry_after) from None
            failed = UploadFailed(f"the upload of {file.name!r} did not finish within "
                                  f"upload_timeout ({self._upload_timeout:g} s)",
                                  retry_after=self._retry_after)
            failed.verified = True
            raise failed from None
        except GatewayError as error:
            error.verified = verified
            raise
        return UploadedFile(name=file.name, size=file.size, content_type=file.content_type,
                            url=slot.get_url)

    def known_file_limit(self, domain: str) -> int | None:
        """The largest file ``domain``'s upload service takes, if known (no question is
        asked: None until a request found the service)."""
        service = self.uploads.known(domain)
        return service.max_size if service is not None else None

    async def start(self) -> None:
        """Check slixmpp's private API the sessions use (``compat``: a clear error if this
        slixmpp lacks it), before any connection; start closing idle sessions."""
        compat.install()
        self.pool.start()

    async def stop(self) -> None:
        await self.pool.stop()
        if self.omemo is not None:
            await self.omemo.stop()
        if self._uploader is not None:
            await self._uploader.close()
