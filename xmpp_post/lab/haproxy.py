"""A private HAProxy (Debian's ``haproxy``) running the project's ``deploy/haproxy.cfg``,
with loopback ports, a stats socket of its own and a faster health check substituted
(``render``), so the tests and benchmarks exercise the file operators deploy."""

from __future__ import annotations

import csv
import io
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

from xmpp_post.lab.process import ChildProcess
from xmpp_post.lab.prosody import _accepts, free_port

Backend = tuple[str, str, int]  # name, host, port


def command() -> str:
    """The haproxy program (Debian puts it in /usr/sbin, not always on PATH)."""
    return shutil.which("haproxy") or "/usr/sbin/haproxy"


def render(template: str, *, port: int, servers: list[Backend], stats_socket: Path,
           check_inter_ms: int = 100, forwardfor: bool = False) -> str:
    """``template`` with these ports and servers; every substitution must apply, so the
    deploy file cannot drift away from what is tested. ``forwardfor``: X-Forwarded-For
    instead of the PROXY protocol (as the file's comment describes)."""
    lines = "".join(f"    server {name} {host}:{p}\n" for name, host, p in servers)
    substitutions = [
        (r"(?m)^    log /dev/log local0\n", "    log stdout format raw local0\n"),
        (r"(?m)^(    stats socket )\S+", rf"\g<1>{stats_socket}"),
        (r"(?m)^    user haproxy\n", ""),
        (r"(?m)^    group haproxy\n", ""),
        (r"(?m)^(    bind ):5280$", rf"\g<1>127.0.0.1:{port}"),
        (r"inter 2s fall 2 rise 2", f"inter {check_inter_ms}ms fall 2 rise 1"),
        (r"(?m)(^    server \S+ \S+\n)+", lines.replace("\\", "\\\\")),
    ]
    if forwardfor:
        substitutions += [(r" send-proxy-v2 check-send-proxy", ""),
                          (r"(?m)^(    balance .*\n)", "\\1    option forwardfor\n")]
    text = template
    for pattern, replacement in substitutions:
        text, count = re.subn(pattern, replacement, text)
        if count != 1:
            raise ValueError(f"deploy/haproxy.cfg no longer matches {pattern!r}")
    return text


class HaproxyServer(ChildProcess):
    name = "haproxy"

    def __init__(self, template: str, servers: list[Backend], *, check_inter_ms: int = 100,
                 forwardfor: bool = False) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="xmpp-post-haproxy-"))
        self.stats_socket = self.workdir / "admin.sock"
        self.config_file = self.workdir / "haproxy.cfg"
        self.config_file.write_text(render(
            template, port=self.port, servers=servers, stats_socket=self.stats_socket,
            check_inter_ms=check_inter_ms, forwardfor=forwardfor))
        super().__init__(self.workdir / "haproxy.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        self.spawn([command(), "-db", "-f", str(self.config_file)], group=True)
        self.wait_ready(lambda: _accepts(self.port) and self.stats_socket.exists(), timeout)

    def ask(self, line: str) -> str:
        """One command on the runtime API (the stats socket)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats_socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def states(self) -> dict[str, str]:
        """Each backend server's status: UP, DOWN, ``UP 1/2`` (going down), ..."""
        text = self.ask("show stat").lstrip("# ")
        return {row["svname"]: row["status"] for row in csv.DictReader(io.StringIO(text))
                if row["pxname"] == "gateways" and row["svname"] not in ("BACKEND",)}

    def wait_for(self, wanted: dict[str, str], timeout: float = 15.0) -> None:
        """Until the named servers have these statuses (health checks are asynchronous)."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.states()
            if all(states.get(name) == status for name, status in wanted.items()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"haproxy servers are {states}, not {wanted}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.terminate(group=True)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
