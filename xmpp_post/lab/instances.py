"""``xmpp-post serve`` as a child process (``python -m xmpp_post`` with this very copy of
the package on its path), for the tests and the benchmarks (``bench.run``, ``bench.scale``):
one definition, so what is measured starts as what is tested."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import xmpp_post
from xmpp_post.lab.process import ChildProcess
from xmpp_post.lab.prosody import _accepts, free_port

PACKAGE_ROOT = Path(xmpp_post.__file__).resolve().parents[1]


class GatewayProcess(ChildProcess):
    """One gateway instance; ``args`` are ``serve`` options other than ``--listen``."""

    name = "xmpp-post"

    def __init__(self, args: list[str], log_file: Path, *, python: str = sys.executable) -> None:
        super().__init__(log_file)
        self.args = args
        self.python = python
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Start the process; return once it listens (it listens once it can serve)."""
        self.launch()
        self.ready(timeout)

    def launch(self) -> None:
        """Start the process (``ready()`` waits for it: start several, then wait)."""
        # This copy of the package first: an installed ``xmpp_post`` may be another's.
        path = [str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        argv = [self.python, "-m", "xmpp_post", "serve", "--listen", f"127.0.0.1:{self.port}",
                *self.args]
        self.spawn(argv, env=env)

    def ready(self, timeout: float = 20.0) -> None:
        self.wait_ready(lambda: _accepts(self.port), timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (drains, if so configured); SIGKILL if it lingers. Idempotent."""
        self.terminate(timeout=timeout)
