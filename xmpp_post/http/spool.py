"""Where the files of requests wait while they arrive and are uploaded: on disk, never
whole in memory.

``SpoolDir`` is one folder per gateway process inside ``spool_dir`` (by default
``xmpp-post-spool-<uid>`` in the system's temporary folder, made readable by its owner
only). The process holds an exclusive lock (``flock``) on a file in its folder while it
runs; at start, every folder whose lock nobody holds was left by a process that died
(killed, crashed, powered off) and is removed, whatever several instances share the
root. Each request that carries files gets a folder of its own (``request_folder``),
removed once it is answered, whether it succeeded, failed or its client vanished; the
process's folder is removed when it stops.

``SpoolWriter`` writes one file in chunks gathered to ``FLUSH`` bytes, each written by a
worker thread (a slow disk never holds the event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from xmpp_post.errors import ConfigError

log = logging.getLogger(__name__)

LOCK_NAME = "lock"
PREFIX = "p"
FLUSH = 512 * 1024


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / f"xmpp-post-spool-{os.getuid()}"


class SpoolDir:
    """This process's spool folder; see the module docstring. ``open`` at start (in the
    application's startup), ``close`` at stop; both are idempotent."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_root()
        self.folder: Path | None = None
        self._lock: IO[bytes] | None = None
        self.swept = 0  # folders of dead processes removed at open
        self._changed = asyncio.Event()  # set, and replaced, when a request folder comes or goes

    def open(self) -> None:
        if self.folder is not None:
            return
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.root.is_symlink() or self.root.stat().st_uid != os.getuid():
                raise ConfigError("spool_dir", f"{self.root} is not a folder of this "
                                  "user's own")
            self.swept = self._sweep()
            name = f"{os.getpid()}-{secrets.token_hex(4)}"
            making = self.root / f".{name}"  # not swept by another process meanwhile
            making.mkdir(mode=0o700)
            lock = (making / LOCK_NAME).open("wb")
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            folder = making.rename(self.root / f"{PREFIX}{name}")
        except OSError as exc:
            raise ConfigError("spool_dir", f"cannot use {self.root}: "
                              f"{exc.strerror or exc}") from None
        self.folder, self._lock = folder, lock
        if self.swept:
            log.info("removed %d spool folders left by processes that ended", self.swept)

    def _sweep(self) -> int:
        removed = 0
        for entry in self.root.iterdir():
            if not entry.name.startswith(PREFIX) or not entry.is_dir() or entry.is_symlink():
                continue
            try:
                with (entry / LOCK_NAME).open("ab") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process holds it
            except OSError:
                pass  # no lock file: its process died before it made one
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        return removed

    def close(self) -> None:
        folder, self.folder = self.folder, None
        lock, self._lock = self._lock, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        if lock is not None:
            lock.close()

    def request_folder(self) -> RequestFolder:
        """A new folder for one request's files."""
        if self.folder is None:
            self.open()
        assert self.folder is not None
        return RequestFolder(self.folder, self._change)

    def _change(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_until(self, done: Callable[[], bool]) -> None:
        """Return once ``done()`` is true, checking it each time a request's folder is
        made or removed (what tests and benchmarks wait on, instead of polling)."""
        while not done():
            await self._changed.wait()

    def __len__(self) -> int:
        """Request folders there are now (a test's and a benchmark's view)."""
        if self.folder is None:
            return 0
        return sum(1 for entry in self.folder.iterdir() if entry.name != LOCK_NAME)


class RequestFolder:
    """One request's files, in a folder made when the first file is (a body that turns
    out to be text costs no folder); ``remove()`` once the request is answered."""

    def __init__(self, parent: Path, changed: Callable[[], None] = lambda: None) -> None:
        self._parent = parent
        self._changed = changed
        self.path: Path | None = None
        self._count = 0

    def new_path(self) -> Path:
        if self.path is None:
            self.path = Path(tempfile.mkdtemp(prefix="r", dir=self._parent))
            self._changed()
        self._count += 1
        return self.path / f"f{self._count}"

    async def remove(self) -> None:
        if self.path is not None:
            await asyncio.to_thread(shutil.rmtree, self.path, True)
            self._changed()


class SpoolWriter:
    """One spooled file, written by a worker thread in chunks of ``FLUSH`` bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._buffer = bytearray()
        self._handle: IO[bytes] | None = None

    async def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        self.size += len(chunk)
        if len(self._buffer) >= FLUSH:
            await self._flush()

    async def _flush(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        if self._handle is None:
            self._handle = await asyncio.to_thread(self.path.open, "wb")
        await asyncio.to_thread(self._handle.write, data)

    async def close(self) -> None:
        """Write what is left and close the file (it exists, even when empty)."""
        try:
            await self._flush()
        finally:
            if self._handle is not None:
                with contextlib.suppress(OSError):
                    self._handle.close()
