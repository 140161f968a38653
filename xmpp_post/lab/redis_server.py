"""A private Redis (Debian's ``redis-server``) on a free loopback port, without
persistence, for tests and benchmarks. ``stop()`` and ``start()`` again reuse the port,
as a restarted Redis would (its data is gone, as without persistence it would be)."""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path

from xmpp_post.lab.process import ChildProcess
from xmpp_post.lab.prosody import _accepts, free_port


class RedisServer(ChildProcess):
    name = "redis-server"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="xmpp-post-redis-"))
        super().__init__(self.workdir / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        """Start Redis; return once its port accepts connections."""
        if self.running:
            return
        command = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.spawn([command, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                    "--logfile", str(self.log_file), "--daemonize", "no",
                    "--protected-mode", "yes"], group=True)
        self.wait_ready(lambda: _accepts(self.port), timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGKILL, as a crash would; nothing is persisted anyway."""
        self.terminate(signal.SIGKILL, timeout, group=True)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
