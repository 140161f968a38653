"""The HTTPS PUT of XEP-0363, with aiohttp's client: the real ``files.Uploader``.

It lives outside both sides of the seam: the XMPP side, which asks for the slot, never
imports an HTTP library, and the HTTP side is the server. ``service`` builds it with the
TLS context the XMPP sessions use, so the upload service's certificate is verified like
the XMPP server's (``ca_file``; ``insecure_skip_tls_verify`` alone turns that off), and
injects it into the relay, which closes it when it stops.

The file is read from its spool in chunks in a worker thread and streamed with its
``Content-Length`` (the service checks it against the slot's size): never held whole in
memory. Redirects are not followed. Any status but 200, 201 or 204, a connection or TLS
failure, or no progress for ``read_timeout`` is ``UploadFailed``: 502 ``upload_failed``.
One client session (its connection pool) is made on first use and kept.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from xmpp_post import __version__, logs
from xmpp_post.errors import UploadFailed
from xmpp_post.files import FileToSend, UploadSlot

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
SUCCESS = frozenset({200, 201, 204})


class HttpsUploader:
    """``put(slot, file)``: see the module docstring."""

    def __init__(self, ssl_context: ssl.SSLContext, *, connect_timeout: float = 10.0,
                 read_timeout: float = 60.0) -> None:
        self._ssl = ssl_context
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout,
                                              sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=64),
                timeout=self._timeout, auto_decompress=False,
                headers={"User-Agent": f"xmpp-post/{__version__}"})
        return self._session

    async def put(self, slot: UploadSlot, file: FileToSend) -> None:
        headers = {**dict(slot.headers), "Content-Type": file.content_type,
                   "Content-Length": str(file.size)}
        try:
            async with self._client().put(slot.put_url, data=_chunks(file.path),
                                          headers=headers, allow_redirects=False) as answer:
                if answer.status not in SUCCESS:
                    log.warning("the upload service answered %d to the PUT of a file of "
                                "%d bytes", answer.status, file.size)
                    reason = f" {logs.escape(answer.reason)}" if answer.reason else ""
                    raise UploadFailed(f"the upload service answered {answer.status}"
                                       f"{reason} to the upload of {file.name!r}")
        except aiohttp.ClientConnectorCertificateError as exc:
            log.error("the upload service's TLS certificate was refused: %s",
                      exc.certificate_error)
            raise UploadFailed("the upload service's TLS certificate could not be "
                               "verified") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("the upload of a file of %d bytes failed: %r", file.size, exc)
            raise UploadFailed(f"the upload of {file.name!r} failed "
                               f"({type(exc).__name__})") from None

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    """The file's bytes, read in a worker thread a chunk at a time."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk
    finally:
        handle.close()
