"""Files for OMEMO recipients (XEP-0454, OMEMO Media Sharing): the upload service gets
only ciphertext, and the message (encrypted) carries an ``aesgcm://`` URL whose
fragment is the key.

* The file is encrypted with AES-256-GCM under a fresh key and a fresh 12-byte IV, in
  a worker thread, a chunk at a time, from its spool file into another beside it
  (removed once uploaded); the 16-byte tag follows the ciphertext.
* It is uploaded as ``application/octet-stream`` under a random name that keeps only
  the extension (clients guess the type from it): the server sees neither the name nor
  the type.
* The URL: the download URL with ``aesgcm`` for ``https``, and ``#`` then the IV and the
  key in hex (24 + 64 digits), as Conversations, Dino, Gajim and Monal read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from xmpp_post.files import GENERIC_TYPE, FileToSend

IV_BYTES = 12
KEY_BYTES = 32
TAG_BYTES = 16
CHUNK = 256 * 1024


def _encrypt(source: Path, target: Path, key: bytes, iv: bytes) -> None:
    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(source, "rb") as reading, os.fdopen(fd, "wb") as writing:
        while chunk := reading.read(CHUNK):
            writing.write(encryptor.update(chunk))
        writing.write(encryptor.finalize())
        writing.write(encryptor.tag)


def _random_name(name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    keep = f".{extension}" if dot and stem and 0 < len(extension) <= 16 else ""
    return secrets.token_hex(16) + keep


async def encrypted_copy(file: FileToSend) -> tuple[FileToSend, str]:
    """``file`` encrypted into a file beside it, and the URL fragment that opens it."""
    key, iv = secrets.token_bytes(KEY_BYTES), secrets.token_bytes(IV_BYTES)
    target = file.path.with_name(file.path.name + "." + secrets.token_hex(4) + ".aesgcm")
    try:
        await asyncio.to_thread(_encrypt, file.path, target, key, iv)
    except BaseException:
        discard(target)
        raise
    sealed = FileToSend(path=target, name=_random_name(file.name),
                        size=file.size + TAG_BYTES, content_type=GENERIC_TYPE)
    return sealed, iv.hex() + key.hex()


def aesgcm_url(get_url: str, fragment: str) -> str:
    """The ``aesgcm://`` URL of an encrypted upload at the https ``get_url``."""
    rest = get_url.split("://", 1)[1].split("#", 1)[0]
    return f"aesgcm://{rest}#{fragment}"


def discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
