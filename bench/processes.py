"""The options of the gateway the benchmark starts, and the machine it runs on."""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

DOMAIN = "localhost"


def gateway_args(c2s_port: int, ca_file: Path, extra_args: list[str], *,
                 uvloop: bool = False, idle_timeout: float = 3600) -> list[str]:
    """The ``serve`` options of the measured gateway (``xmpp_post.lab.instances.
    GatewayProcess`` runs it: ``python -m xmpp_post`` of this checkout, on a free port)."""
    return ["--domain", DOMAIN, "--xmpp-server", f"127.0.0.1:{c2s_port}",
            "--ca-file", str(ca_file), "--max-sessions", "5000",
            "--idle-timeout", f"{idle_timeout:g}",
            *extra_args, "--uvloop" if uvloop else "--no-uvloop"]


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


async def open_sessions(url: str) -> float:
    """``xmpp_post_sessions_open`` from the gateway's /metrics."""
    reader, writer = await asyncio.open_connection(*url.removeprefix("http://").split(":"))
    writer.write(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")
    text = (await reader.read()).decode()
    writer.close()
    for line in text.splitlines():
        if line.startswith("xmpp_post_sessions_open "):
            return float(line.split()[1])
    raise RuntimeError("the gateway's /metrics has no xmpp_post_sessions_open")
