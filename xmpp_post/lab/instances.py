"""``xmpp-post serve`` as a child process (``python -m xmpp_post`` with this very copy of
the package on its path), for tests and benchmarks that signal or kill an instance."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import xmpp_post
from xmpp_post.lab.prosody import _accepts, free_port

PACKAGE_ROOT = Path(xmpp_post.__file__).resolve().parents[1]


class GatewayProcess:
    """One gateway instance; ``args`` are ``serve`` options other than ``--listen``."""

    def __init__(self, args: list[str], log_file: Path, *, python: str = sys.executable) -> None:
        self.args = args
        self.log_file = log_file
        self.python = python
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Start the process; return once it listens (it listens once it can serve)."""
        self.launch()
        self.ready(timeout)

    def launch(self) -> None:
        """Start the process (``ready()`` waits for it: start several, then wait)."""
        env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
        argv = [self.python, "-m", "xmpp_post", "serve", "--listen", f"127.0.0.1:{self.port}",
                *self.args]
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)

    def ready(self, timeout: float = 20.0) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"xmpp-post exited at start: {self.log_tail()}")
            if _accepts(self.port):
                return
            time.sleep(0.02)
        raise TimeoutError(f"xmpp-post did not open its port: {self.log_tail()}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def signal(self, signum: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        """The exit status, once the process has ended."""
        assert self._proc is not None
        return self._proc.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (drains, if so configured); SIGKILL if it lingers. Idempotent."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"
