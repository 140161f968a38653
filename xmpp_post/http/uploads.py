"""Request bodies that carry files: read as they arrive into the request's spool folder
(``spool``), never whole in memory, before the request is handled.

Two kinds of route take files (``context.UPLOAD_ROUTES``):

* ``form``: ``POST <base>`` with ``multipart/form-data`` (not with ``?template=``).
  Every part named ``file`` is a file (``safe_name`` of its file name, its type by
  ``content_type_for``); every other part is a text field, in UTF-8, all of them
  together within ``max_body``. At most ``files.MAX_FILES`` files and ``MAX_PARTS``
  parts; a part may not be encoded (``Content-Transfer-Encoding`` other than binary,
  ``Content-Encoding``) or hold parts itself.
* ``body``: ntfy's ``PUT|POST /<topic>`` (and its webhook form): the body stays in
  memory up to ``memory`` bytes (it may be a message's text), and is spooled beyond.
  Whether it is a file is ntfy's rule, decided by the handler.

Limits, checked from ``Content-Length`` before anything is read where the client sent
one, and while reading: each file at most ``file`` bytes (``max_file_size``, or the
smaller limit the sender's upload service is known to advertise), a form's files
together at most ``max_file_size`` (413 ``file_too_large``); no progress for ``idle``
seconds (``client_timeout``) is 408 ``client_too_slow``. ``digest`` covers every part's
name, file name, type and content: the ``Idempotency-Key`` fingerprint of the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import BodyPartReader, web
from aiohttp.hdrs import CONTENT_ENCODING, CONTENT_TRANSFER_ENCODING, CONTENT_TYPE
from aiohttp.http_exceptions import HttpProcessingError

from xmpp_post.config import Config
from xmpp_post.errors import (
    BadRequest,
    ClientGone,
    FileTooLarge,
    PayloadTooLarge,
    RequestTimeout,
)
from xmpp_post.files import MAX_FILES, FileToSend, content_type_for, safe_name
from xmpp_post.http.context import METRICS, RELAY, UPLOAD_ROUTES
from xmpp_post.http.spool import RequestFolder, SpoolWriter
from xmpp_post.model import Sender
from xmpp_post.templates import TEMPLATE_PARAMETER

FORM_DATA = "multipart/form-data"
FILE_PART = "file"
MAX_PARTS = 100
CHUNK = 64 * 1024
PLAIN_ENCODINGS = ("", "binary", "7bit", "8bit")


@dataclass(frozen=True)
class Limits:
    file: int  # one file
    files: int  # a form's files together
    text: int  # a form's text fields together
    idle: float  # seconds without progress
    memory: int  # a body kept in memory up to this


@dataclass
class SpooledForm:
    """A ``multipart/form-data`` body: its text fields in order, and its files."""

    folder: RequestFolder
    fields: list[tuple[str, str]] = field(default_factory=list)
    files: list[FileToSend] = field(default_factory=list)
    digest: bytes = b""


@dataclass
class SpooledBody:
    """A body that may be a file: ``data`` when it fit in memory, else on disk at
    ``path``."""

    folder: RequestFolder
    size: int = 0
    data: bytes | None = None
    path: Path | None = None
    digest: bytes = b""

    async def as_file(self, name: str, content_type: str) -> FileToSend:
        """The body as a file to upload (written to the spool first if in memory)."""
        if self.data is not None:
            writer = SpoolWriter(self.folder.new_path())
            await writer.write(self.data)
            await writer.close()
            self.path = writer.path
        assert self.path is not None
        return FileToSend(self.path, name, self.size, content_type)


Spooled = SpooledForm | SpooledBody
SPOOLED: web.RequestKey[Spooled] = web.RequestKey("spooled")  # set by the limits guard


def upload_kind(request: web.Request) -> str | None:
    """``form`` or ``body`` when the request's body may carry files; a form only as
    ``multipart/form-data``, and not for a template to render (``?template=``)."""
    kind = request.app[UPLOAD_ROUTES].get(request.match_info.route)
    if kind == "form" and (request.content_type != FORM_DATA
                           or TEMPLATE_PARAMETER in request.query):
        return None
    return kind


def spooled_form(request: web.Request) -> SpooledForm | None:
    found = request.get(SPOOLED)
    return found if isinstance(found, SpooledForm) else None


def spooled_body(request: web.Request) -> SpooledBody | None:
    found = request.get(SPOOLED)
    return found if isinstance(found, SpooledBody) else None


async def spool(request: web.Request, kind: str, folder: RequestFolder, config: Config,
                sender: Sender) -> Spooled:
    """Read the request's body into ``folder`` (``kind``: ``form`` or ``body``), within
    the limits of the settings and of the sender's upload service, when known."""
    known = request.app[RELAY].known_file_limit(sender.domain)
    most = min(config.max_file_size, known) if known is not None else config.max_file_size
    limits = Limits(file=most, files=config.max_file_size, text=config.max_body,
                    idle=config.client_timeout,
                    memory=max(config.max_body, config.ntfy_max_text))
    try:
        check_length(request, kind, limits)
        if kind == "form":
            return await read_form(request, folder, limits)
        return await read_body(request, folder, limits)
    except FileTooLarge as error:
        request.app[METRICS].count_upload(error.code, request.content.total_bytes)
        raise


def check_length(request: web.Request, kind: str, limits: Limits) -> None:
    """413 before reading when ``Content-Length`` already says a file is too large."""
    length = request.content_length
    if length is None:
        return
    if kind == "form" and length > limits.files + limits.text:
        raise FileTooLarge(f"the body is {length} bytes; files of at most {limits.files} "
                           f"bytes together (and {limits.text} of text) are accepted")
    if kind == "body" and length > max(limits.file, limits.memory):
        raise FileTooLarge(f"the body is {length} bytes; a file may have at most "
                           f"{limits.file}")


class _Reading:
    """One body being read: its digest, its idle deadline (``deadline``, set by the
    reader), and the bytes the connection delivered so far, bounded."""

    def __init__(self, request: web.Request, limits: Limits) -> None:
        self.limits = limits
        self.digest = hashlib.sha256()
        self.deadline: asyncio.Timeout | None = None
        self.text = self.files = 0  # bytes of text fields, of files, so far
        self._content = request.content
        # What the parts carry is counted as it is read; this bounds what is not
        # (part headers, a preamble) and what aiohttp buffers ahead.
        self._most = limits.files + limits.text + limits.memory + 4 * CHUNK

    def progressed(self) -> None:
        if self._content.total_bytes > self._most:
            raise FileTooLarge(f"the body is over {self._most} bytes")
        if self.deadline is not None:
            self.deadline.reschedule(asyncio.get_running_loop().time() + self.limits.idle)

    def note(self, *parts: bytes | str) -> None:
        for part in parts:
            data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
            self.digest.update(len(data).to_bytes(8, "big") + data)

    @contextlib.contextmanager
    def translated(self) -> Iterator[None]:
        """aiohttp's and the connection's failures as the gateway's errors."""
        try:
            yield
        except TimeoutError:
            raise RequestTimeout(f"no part of the body arrived for {self.limits.idle:g} s",
                                 code="client_too_slow") from None
        except ConnectionError:
            raise ClientGone("the client disconnected before its body arrived") from None
        except (ValueError, HttpProcessingError):
            raise BadRequest("the body is not valid multipart/form-data",
                             code="invalid_form") from None


async def read_form(request: web.Request, folder: RequestFolder,
                    limits: Limits) -> SpooledForm:
    """Every part of a ``multipart/form-data`` body: text fields, and files spooled."""
    form = SpooledForm(folder)
    reading = _Reading(request, limits)
    with reading.translated():
        async with asyncio.timeout(limits.idle) as reading.deadline:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                reading.progressed()
                if (not isinstance(part, BodyPartReader)
                        or len(form.fields) + len(form.files) == MAX_PARTS):
                    raise BadRequest(f"a form of at most {MAX_PARTS} parts, none holding "
                                     "parts itself, is accepted", code="invalid_form")
                _check_plain(part)
                if (part.name or "") == FILE_PART:
                    await _read_file(part, form, reading)
                else:
                    await _read_field(part, form, reading)
    form.digest = reading.digest.digest()
    return form


async def _read_field(part: BodyPartReader, form: SpooledForm, reading: _Reading) -> None:
    name = part.name or ""
    room = reading.limits.text - reading.text
    value = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        reading.progressed()
        value += chunk
        if len(value) > room:
            raise PayloadTooLarge(f"the form's text fields are over {reading.limits.text} "
                                  "bytes together")
    reading.text += len(value)
    data = bytes(value)
    reading.note("field", name, data)
    form.fields.append((name, _decoded(name, data)))


async def _read_file(part: BodyPartReader, form: SpooledForm, reading: _Reading) -> None:
    limits = reading.limits
    if len(form.files) == MAX_FILES:
        raise BadRequest(f"at most {MAX_FILES} files are accepted in one request",
                         code="too_many_files")
    name = safe_name(part.filename)
    kind = content_type_for(name, part.headers.get(CONTENT_TYPE))
    reading.note("file", name, kind)
    writer = SpoolWriter(form.folder.new_path())
    try:
        while chunk := await part.read_chunk(CHUNK):
            reading.progressed()
            reading.files += len(chunk)
            if reading.files > limits.files:
                raise FileTooLarge(f"the files are over {limits.files} bytes together")
            if writer.size + len(chunk) > limits.file:
                raise FileTooLarge(f"the file {name!r} is over {limits.file} bytes, the "
                                   "most a file may have here")
            reading.digest.update(chunk)
            await writer.write(chunk)
    finally:
        await writer.close()
    reading.note(str(writer.size))
    form.files.append(FileToSend(writer.path, name, writer.size, kind))


def _check_plain(part: BodyPartReader) -> None:
    encoding = part.headers.get(CONTENT_TRANSFER_ENCODING, "").strip().lower()
    if encoding not in PLAIN_ENCODINGS or part.headers.get(CONTENT_ENCODING, "identity") \
            .strip().lower() != "identity":
        raise BadRequest("a form part may not be encoded (Content-Transfer-Encoding or "
                         "Content-Encoding): send its bytes as they are",
                         code="invalid_form")


def _decoded(name: str, value: bytes) -> str:
    try:
        return value.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise BadRequest(f"the form field {name!r} is not valid UTF-8",
                         code="invalid_encoding") from None


async def read_body(request: web.Request, folder: RequestFolder,
                    limits: Limits) -> SpooledBody:
    """The whole body: in memory up to ``limits.memory`` bytes, on disk beyond."""
    body = SpooledBody(folder)
    kept = bytearray()
    writer: SpoolWriter | None = None
    most = max(limits.file, limits.memory)
    reading = _Reading(request, limits)
    try:
        with reading.translated():
            async with asyncio.timeout(limits.idle) as reading.deadline:
                while chunk := await request.content.read(CHUNK):
                    reading.progressed()
                    body.size += len(chunk)
                    if body.size > most:
                        raise FileTooLarge(f"the body is over {most} bytes, the most a "
                                           "file may have here")
                    reading.digest.update(chunk)
                    if writer is None and body.size <= limits.memory:
                        kept += chunk
                        continue
                    if writer is None:
                        writer = SpoolWriter(folder.new_path())
                        await writer.write(bytes(kept))
                        kept = bytearray()
                    await writer.write(chunk)
    finally:
        if writer is not None:
            await writer.close()
    if writer is None:
        body.data = bytes(kept)
    else:
        body.path = writer.path
    body.digest = reading.digest.digest()
    return body
