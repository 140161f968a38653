"""What every server the lab starts as a child process shares: starting it, waiting until
it serves (or saying why it never will, from its log), signalling and stopping it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from signal import SIGKILL, SIGTERM


class ChildProcess:
    """A child process with a log file; subclasses say how to start it and when it is ready."""

    name = "process"

    def __init__(self, log_file: Path) -> None:
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def spawn(self, argv: list[str], *, env: Mapping[str, str] | None = None,
              group: bool = False) -> None:
        """Start ``argv`` with its output in the log (``group``: in a session of its own,
        so ``stop`` reaches whatever it forks)."""
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env,
                                          start_new_session=group)

    def wait_ready(self, ready: Callable[[], bool], timeout: float) -> None:
        """Return once ``ready()``; raise with the log's tail if it exits or takes too long."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start: {self.log_tail()}")
            if ready():
                return
            time.sleep(0.02)
        raise TimeoutError(f"{self.name} did not open its port: {self.log_tail()}")

    def signal(self, signum: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        """The exit status, once the process has ended."""
        assert self._proc is not None
        return self._proc.wait(timeout)

    def terminate(self, signum: int = SIGTERM, timeout: float = 10.0,
                  group: bool = False) -> None:
        """Send ``signum`` (to the whole group with ``group``), SIGKILL if it lingers.
        Idempotent."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(proc.pid, SIGKILL)
            else:
                proc.kill()
            proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"
