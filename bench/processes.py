"""The processes the benchmark starts besides Prosody, and the machine it runs on."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xmpp_post.lab.prosody import free_port

DOMAIN = "localhost"
SOURCE = Path(__file__).resolve().parents[1]  # the checkout whose gateway is measured


@dataclass
class GatewayProcess:
    """``xmpp-post serve`` as a child process, so its CPU and RSS can be read.

    It runs the gateway of the checkout this file is in (``python -m xmpp_post``).
    """

    c2s_port: int
    ca_file: Path
    extra_args: list[str] = field(default_factory=list)
    uvloop: bool = False
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, log_file: Path) -> None:
        self.port = free_port()
        # ``python -m xmpp_post`` from this checkout, like the bench itself: the installed
        # ``xmpp-post`` command may belong to another checkout (an editable install).
        argv = [sys.executable, "-m", "xmpp_post", "serve", "--domain", DOMAIN,
                "--listen", f"127.0.0.1:{self.port}",
                "--xmpp-server", f"127.0.0.1:{self.c2s_port}", "--ca-file", str(self.ca_file),
                "--max-sessions", "5000", "--idle-timeout", "3600", *self.extra_args]
        argv.append("--uvloop" if self.uvloop else "--no-uvloop")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(SOURCE), *filter(None, [os.environ.get("PYTHONPATH")])])}
        with log_file.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"xmpp-post exited at start; see {log_file}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("xmpp-post did not open its port")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    prosody = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "prosody"],
                             capture_output=True, text=True).stdout.strip()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version(), "prosody": prosody or "unknown",
            "wrk": wrk.strip(), "mem_total_mib": os.sysconf("SC_PHYS_PAGES")
            * os.sysconf("SC_PAGE_SIZE") // (1 << 20)}
