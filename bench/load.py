"""Drive HTTP load with wrk (Debian's ``wrk`` package) and read back its figures."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procstat

SCRIPT = Path(__file__).with_name("load.lua")


@dataclass(frozen=True)
class Entry:
    """One request target: a path and the Basic credentials to post with."""

    path: str
    user: str
    password: str

    @property
    def auth(self) -> str:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII text is a valid Lua string literal


def _config(entries: list[Entry], *, tag: str, seconds: float, once: bool, threads: int,
            host: str | None, result_file: Path, marker_prefix: str) -> str:
    rows = ",\n".join(f"  {{ path = {_lua_string(e.path)}, auth = {_lua_string(e.auth)} }}"
                      for e in entries)
    return (f"CONFIG = {{\n tag = {_lua_string(tag)}, seconds = {seconds},\n"
            f" once = {'true' if once else 'false'}, threads = {threads},\n"
            f" host = {_lua_string(host) if host else 'nil'},\n"
            f" result_file = {_lua_string(str(result_file))},\n"
            f" marker_prefix = {_lua_string(marker_prefix)},\n"
            f" entries = {{\n{rows}\n }}\n}}\n")


async def run_wrk(base_url: str, entries: list[Entry], *, tag: str, connections: int,
                  threads: int = 2, seconds: float = 10.0, once: bool = False,
                  host: str | None = None, timeout_s: int = 10) -> dict[str, Any]:
    """Run wrk until the script's own stop condition; return its figures as a dict.

    ``once``: every entry is posted exactly once (spread over the connections);
    otherwise the first entry is posted for ``seconds``. ``cpu_s`` in the answer is wrk's
    own CPU time (all its threads) until its threads stopped.
    """
    if once and len(entries) < connections:
        raise ValueError("need at least one entry per connection")
    with tempfile.TemporaryDirectory(prefix="xmpp-post-wrk-") as folder:
        work = Path(folder)
        result_file = work / "result.json"
        marker_prefix = str(work / "done-")
        script = work / "load.lua"
        script.write_text(_config(entries, tag=tag, seconds=seconds, once=once,
                                  threads=threads, host=host, result_file=result_file,
                                  marker_prefix=marker_prefix) + SCRIPT.read_text())
        budget = int(seconds + 120) if once else int(seconds + 30)
        proc = await asyncio.create_subprocess_exec(
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{budget}s",
            f"--timeout={timeout_s}s", "-s", str(script), base_url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget + 5
        # wrk's main thread sleeps for the whole -d; its threads stop on their own, and
        # SIGINT then lets it summarise at once.
        # Its CPU time is sampled as it runs: once it exits, /proc forgets it.
        cpu = 0.0
        while loop.time() < deadline and proc.returncode is None:
            finished = all(os.path.exists(f"{marker_prefix}{i}")  # noqa: ASYNC240
                           for i in range(threads))
            with contextlib.suppress(OSError):
                cpu = procstat.cpu_seconds(proc.pid)
            if finished:
                proc.send_signal(signal.SIGINT)
                break
            await asyncio.sleep(0.05)
        output, _ = await proc.communicate()
        if not result_file.exists():
            raise RuntimeError(f"wrk gave no result: {output.decode(errors='replace')}")
        result: dict[str, Any] = json.loads(result_file.read_text())
        result["wrk_output"] = output.decode(errors="replace")
        result["cpu_s"] = cpu
        return result
