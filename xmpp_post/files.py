"""Files sent as XEP-0363 uploads: the types that cross the seam, and the rules for a
file's name and type. Pure: nothing here does network I/O or knows HTTP or XMPP
libraries.

A request's file arrives on the HTTP side, which spools it to a temporary file (never
held whole in memory) and hands the relay a ``FileToSend``. The relay asks the sender's
XMPP server for an ``UploadSlot`` (XEP-0363), puts the file there with an ``Uploader``
(the HTTPS PUT; ``xmpp_post.uploader`` is the real one, injected by ``service``: the
XMPP side never imports an HTTP library), and answers with an ``UploadedFile``, whose
URL then goes to each recipient as a message of its own (with XEP-0066 out-of-band
data, so that clients show the file inline).

``safe_name`` makes what a client calls its file fit to be a file name on the upload
service (no path, no ``..``, no control or bidirectional-override characters, bounded);
``content_type_for`` picks the type the file is uploaded with: the one the part or
header gave (unless it is a form's, or the generic ``application/octet-stream``), else
the one its name suggests, else ``application/octet-stream``.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

MAX_FILES = 10  # files in one request
MAX_NAME = 120  # characters of a file's name
MAX_EXTENSION = 16  # characters of the extension kept when a long name is cut
GENERIC_TYPE = "application/octet-stream"
FALLBACK_NAME = "file"
# Characters a file name loses: controls (C0, DEL, C1), what XML cannot carry, the
# bidirectional overrides and isolates that make "gnp.exe" look like "exe.png", and
# path separators (a name with one keeps what follows the last).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                     "\ud800-\udfff\ufeff\ufffe\uffff]")
_SEPARATORS = re.compile(r"[/\\]")
_TOKEN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}"
_MEDIA_TYPE = re.compile(f"{_TOKEN}/{_TOKEN}")
_CHARSET = re.compile(r"""charset\s*=\s*"?([A-Za-z0-9._-]{1,40})"?""", re.IGNORECASE)
# Common names whose type Python's table lacks (where /etc/mime.types does not add them).
_MORE_TYPES = {".log": "text/plain", ".yml": "application/yaml", ".yaml": "application/yaml",
               ".toml": "application/toml", ".gz": "application/gzip"}
_COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2",
               "xz": "application/x-xz", "br": "application/x-brotli"}
# Types that say how a request was sent, never what a file is (curl -d sends the form type).
_NOT_A_FILE_TYPE = ("application/x-www-form-urlencoded", "multipart/")


@dataclass(frozen=True)
class FileToSend:
    """A file of a request, spooled at ``path`` (removed with the request), with the name
    and type it is uploaded under (``safe_name``, ``content_type_for``)."""

    path: Path
    name: str
    size: int
    content_type: str


@dataclass(frozen=True)
class UploadSlot:
    """Where the sender's server lets a file be put (``put_url``, with ``headers``) and
    where it will be downloaded from (``get_url``)."""

    put_url: str
    get_url: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class UploadedFile:
    """A file on the sender's upload service: what the answer lists under ``files``."""

    name: str
    size: int
    content_type: str
    url: str

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "size": self.size, "content_type": self.content_type,
                "url": self.url}


class Uploader(Protocol):
    """Puts a file into a slot: the HTTPS PUT of XEP-0363."""

    async def put(self, slot: UploadSlot, file: FileToSend) -> None:
        """Return once the upload service has the whole file; raise ``UploadFailed``
        (the status it answered, a timeout, a refused certificate) otherwise."""
        ...

    async def close(self) -> None: ...


def safe_name(raw: str | None, fallback: str = FALLBACK_NAME) -> str:
    """A file name fit for the upload service and the recipients' clients."""
    name = (raw or "")[-4 * MAX_NAME:]  # bounded before any work (its end matters)
    name = _SEPARATORS.split(unicodedata.normalize("NFC", name))[-1]
    name = _UNSAFE.sub("", name).strip().lstrip(".").strip()
    if not name:
        return fallback
    if len(name) <= MAX_NAME:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and len(extension) <= MAX_EXTENSION:
        return stem[:MAX_NAME - len(extension) - 1].rstrip() + "." + extension
    return name[:MAX_NAME].rstrip()


def content_type_for(name: str, given: str | None) -> str:
    """The type to upload ``name`` with, from the type a client gave (``given``: a
    Content-Type value; its charset is kept) or the name (see the module docstring)."""
    media, _, parameters = (given or "").partition(";")
    media = media.strip().lower()
    if (_MEDIA_TYPE.fullmatch(media) and media != GENERIC_TYPE
            and not media.startswith(_NOT_A_FILE_TYPE)):
        charset = _CHARSET.search(parameters)
        return f"{media}; charset={charset.group(1).lower()}" if charset else media
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if encoding is not None:  # report.tar.gz is gzip's bytes, whatever is inside
        guessed = _COMPRESSED.get(encoding, GENERIC_TYPE)
    if guessed is None:
        guessed = _MORE_TYPES.get(name[name.rfind("."):].lower()) if "." in name else None
    return guessed or GENERIC_TYPE


def unnamed(content_type: str) -> str:
    """The name of a file sent without one, as ntfy names it: ``attachment`` and the
    extension of its type (``.bin`` when there is none)."""
    media = content_type.partition(";")[0].strip()
    extension = mimetypes.guess_extension(media, strict=False) if media != GENERIC_TYPE else None
    return "attachment" + (extension or ".bin")


def is_https_url(url: str) -> bool:
    """Whether ``url`` is an absolute https URL with a host (an upload slot's must be)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        return False
    return (parts.scheme.lower() == "https" and bool(parts.hostname)
            and not re.search(r"[\x00-\x20\x7f]", url))
