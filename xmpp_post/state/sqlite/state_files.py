"""The files of a state directory, and the rules they are held to.

* The directory: created (mode 0700) if missing, its parent existing; refused when group
  or others may write to it (they could swap the database or the key under the gateway).
* ``lock``: an exclusive ``flock`` held while the gateway runs, with its process id in
  it, so a second gateway on the same directory refuses to start, naming the first.
* ``state.key``: 32 random bytes made on first start (mode 0600), the key of the digests
  the database keeps (``StateKey``), unless ``state_secret_file`` gives one. Kept apart
  from the database: a copy of the database alone cannot be used to test guesses of a
  password against its digests.
* ``state.db``: created with mode 0600 before SQLite opens it (SQLite gives its ``-wal``
  and ``-shm`` files the database's mode); an existing one with a looser mode is
  tightened, with a warning.

Every failure is a ``ConfigError`` naming ``state_dir``: the gateway does not start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import secrets
import stat
from pathlib import Path

from xmpp_post.errors import ConfigError

log = logging.getLogger(__name__)

DATABASE = "state.db"
LOCK = "lock"
KEY = "state.key"
KEY_BYTES = 32


def _problem(path: Path, text: str) -> ConfigError:
    return ConfigError("state_dir", f"{path}: {text}")


def prepare_directory(path: Path) -> Path:
    """The state directory, created if missing, checked; its resolved path."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.stat()
    except OSError as exc:
        raise _problem(path, f"cannot create or read it ({exc.strerror})") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise _problem(path, "is not a directory")
    if info.st_mode & 0o022:
        raise _problem(path, f"group or others may write to it (mode "
                             f"{stat.S_IMODE(info.st_mode):04o}); chmod go-w {path}")
    if not os.access(path, os.W_OK | os.X_OK):
        raise _problem(path, "this user may not write to it")
    return path.resolve()


class DirectoryLock:
    """The directory's lock, held from ``acquire`` to ``release``."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
        except OSError as exc:
            raise _problem(self.path, f"cannot open the lock file ({exc.strerror})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_small(fd).strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ConfigError("state_dir", f"{self.path.parent} is in use by another "
                                  f"xmpp-post (process {holder}); two gateways cannot "
                                  "share one state directory: give each its own "
                                  "--state-dir") from None
            raise _problem(self.path, f"cannot lock it ({exc.strerror})") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor releases the flock

    def __del__(self) -> None:  # a gateway that failed to start, never stopped
        self.release()


def _read_small(fd: int) -> str:
    try:
        return os.pread(fd, 64, 0).decode("ascii", "replace")
    except OSError:
        return ""


def state_key(directory: Path) -> bytes:
    """The key in ``state.key``, made on first use (written whole to a file of its own,
    then linked into place: a crash never leaves a partial key)."""
    path = directory / KEY
    if not path.exists():
        spare = directory / f"{KEY}.{os.getpid()}.new"
        try:
            fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, secrets.token_bytes(KEY_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
            with contextlib.suppress(FileExistsError):
                os.link(spare, path)
        except OSError as exc:
            raise _problem(path, f"cannot create the key ({exc.strerror})") from exc
        finally:
            with contextlib.suppress(OSError):
                spare.unlink()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise _problem(path, f"cannot read the key ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        key = os.read(fd, 4096)
    finally:
        os.close(fd)
    if info.st_mode & 0o077:
        raise _problem(path, f"group or others may read the key (mode "
                             f"{stat.S_IMODE(info.st_mode):04o}); chmod 600 {path}")
    if len(key) < KEY_BYTES:
        raise _problem(path, f"holds {len(key)} bytes, not a key of {KEY_BYTES}; remove it "
                             "to make a new one (Idempotency-Key answers kept so far are "
                             "then forgotten)")
    return key


def database_file(directory: Path) -> Path:
    """The database's path, the file created (empty, mode 0600) if missing."""
    path = directory / DATABASE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise _problem(path, f"cannot open the database ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _problem(path, "is not a regular file")
        if info.st_mode & 0o077:
            log.warning("%s had mode %04o; tightened to 0600", path,
                        stat.S_IMODE(info.st_mode))
            os.fchmod(fd, 0o600)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(f"{path}{suffix}", 0o600)
    finally:
        os.close(fd)
    return path
