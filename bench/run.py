"""The xmpp-post benchmark: gateway vs the in-server baseline, measured in one run.

    python -m bench.run [--duration 10] [--out bench/results/latest.json]

Starts a throwaway Prosody (with ``mod_http_msg_reference`` from ``../shared/reference``
when that folder exists), the gateway as its own process (``xmpp-post serve``), and a
lean receiving XMPP client that counts what arrives; drives load with ``wrk``; prints one
table and writes the raw figures as JSON. Run on demand only: never as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procstat
from bench.counter import BodyCounter, register_accounts
from bench.load import Entry, run_wrk
from xmpp_post.lab.prosody import ProsodyServer, free_port

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference" / "mod_http_msg_reference"
DOMAIN = "localhost"
RECEIVER = "rcv"
HOT = "hot"


def password_of(user: str) -> str:
    return f"pw-{user}-secret"


def cold_user(i: int) -> str:
    return f"u{i:04d}"


@dataclass
class GatewayProcess:
    """``xmpp-post serve`` as a child process, so its CPU and RSS can be read."""

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
        command = shutil.which("xmpp-post", path=str(Path(sys.executable).parent))
        if command is None:
            raise RuntimeError("the xmpp-post command is not installed next to this Python")
        argv = [command, "serve", "--domain", DOMAIN, "--listen", f"127.0.0.1:{self.port}",
                "--xmpp-server", f"127.0.0.1:{self.c2s_port}", "--ca-file", str(self.ca_file),
                "--max-sessions", "5000", "--idle-timeout", "3600", *self.extra_args]
        if self.uvloop:
            argv.append("--uvloop")
        with log_file.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"xmpp-post exited at start; see {log_file}")
            try:
                with __import__("socket").create_connection(("127.0.0.1", self.port), 0.2):
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


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.results: dict[str, Any] = {"gateway": {}, "reference": {}, "notes": []}
        self.with_reference = REFERENCE.is_dir() and not args.skip_reference
        self.server = ProsodyServer(
            muc=False, registration=True,
            plugin_paths=[str(REFERENCE)] if self.with_reference else [],
            extra_modules=["http_msg_reference"] if self.with_reference else [])
        self.counter: BodyCounter | None = None
        self.gateway: GatewayProcess | None = None
        self.prosody_pid = 0
        self.sequence = 0

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def tag(self, name: str) -> str:
        self.sequence += 1
        return f"{name}{self.sequence}"

    async def setup(self) -> None:
        if not self.with_reference:
            self.results["notes"].append(
                f"{REFERENCE} not found (or --skip-reference): baseline column skipped")
        self.server.prepare()
        self.server.start()
        assert self.server._proc is not None
        self.prosody_pid = procstat.descendant_named(self.server._proc.pid, "lua")
        users = [RECEIVER, HOT] + [cold_user(i) for i in range(self.args.accounts)]
        self.log(f"registering {len(users)} accounts")
        await register_accounts(self.server.c2s_port, DOMAIN, self.server.cert_file,
                                [(u, password_of(u)) for u in users])
        self.counter = BodyCounter(RECEIVER, DOMAIN, password_of(RECEIVER),
                                   self.server.c2s_port, self.server.cert_file)
        await self.counter.start()

    def start_gateway(self) -> GatewayProcess:
        assert self.server.workdir is not None
        gateway = GatewayProcess(self.server.c2s_port, self.server.cert_file,
                                 list(self.args.gateway_arg or []), uvloop=self.args.uvloop)
        gateway.start(self.server.workdir / "gateway.log")
        self.gateway = gateway
        return gateway

    def stop_gateway(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None

    async def teardown(self) -> None:
        if self.counter is not None:
            await self.counter.stop()
        self.stop_gateway()
        self.server.close()

    # scenarios ---------------------------------------------------------------------

    def gateway_target(self, gw: GatewayProcess, user: str) -> Entry:
        return Entry(f"/msg/{RECEIVER}@{DOMAIN}", f"{user}@{DOMAIN}", password_of(user))

    def reference_target(self, user: str) -> Entry:
        return Entry(f"/msg_ref/{RECEIVER}@{DOMAIN}", f"{user}@{DOMAIN}", password_of(user))

    async def profiled(self, label: str, pid: int | None) -> asyncio.subprocess.Process | None:
        """With --profile, sample ``pid`` with py-spy until the returned process is stopped."""
        if self.args.profile is None or pid is None:
            return None
        self.args.profile.mkdir(parents=True, exist_ok=True)
        out = self.args.profile / f"{label}.txt"
        return await asyncio.create_subprocess_exec(
            "py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "250",
            "--nonblocking", "--output", str(out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)

    async def end_profile(self, spy: asyncio.subprocess.Process | None) -> None:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()

    async def hot(self, name: str, url: str, entry: Entry, host: str | None,
                  pids: dict[str, int]) -> dict[str, Any]:
        assert self.counter is not None
        warm_tag = self.tag("warm")
        warm = await run_wrk(url, [entry], tag=warm_tag, connections=self.args.connections,
                             seconds=self.args.warmup, host=host)
        await self.counter.wait_for(warm_tag, warm["ok"], settle=0.2)
        tag = self.tag("hot")
        cpu_before = {k: procstat.cpu_seconds(p) for k, p in pids.items()}
        self.log(f"hot sender against {name} for {self.args.duration:g} s")
        spy = await self.profiled("hot", pids.get("gateway"))
        result = await run_wrk(url, [entry], tag=tag, connections=self.args.connections,
                               seconds=self.args.duration, host=host)
        await self.end_profile(spy)
        cpu_after = {k: procstat.cpu_seconds(p) for k, p in pids.items()}
        delivered = await self.counter.wait_for(tag, result["ok"], within=30, settle=1.0)
        elapsed = result["elapsed"] or self.args.duration
        accepted = result["ok"]
        cpu = {k: cpu_after[k] - cpu_before[k] for k in pids}
        per_k = {k: (v / accepted * 1000 if accepted else None) for k, v in cpu.items()}
        return {
            "requests": result["completed"], "accepted": accepted, "failed": result["failed"],
            "delivered": delivered, "duplicates": self.counter.duplicates(tag),
            "delivered_equals_accepted": delivered == accepted,
            "elapsed_s": elapsed, "accepted_per_s": accepted / elapsed,
            "delivered_per_s": delivered / elapsed,
            "p50_ms": result["p50_us"] / 1000, "p90_ms": result["p90_us"] / 1000,
            "p99_ms": result["p99_us"] / 1000, "max_ms": result["max_us"] / 1000,
            "cpu_s": cpu, "cpu_s_per_1000": per_k,
            "wrk_errors": result["errors"], "connections": self.args.connections,
        }

    async def cold(self, name: str, url: str, entries: list[Entry], host: str | None,
                   pids: dict[str, int]) -> dict[str, Any]:
        assert self.counter is not None
        tag = self.tag("cold")
        self.log(f"{len(entries)} cold senders against {name}")
        cpu_before = {k: procstat.cpu_seconds(p) for k, p in pids.items()}
        spy = await self.profiled("cold", pids.get("gateway"))
        result = await run_wrk(url, entries, tag=tag, connections=self.args.cold_connections,
                               once=True, host=host, timeout_s=30)
        await self.end_profile(spy)
        cpu_after = {k: procstat.cpu_seconds(p) for k, p in pids.items()}
        delivered = await self.counter.wait_for(tag, result["ok"], within=30, settle=0.5)
        elapsed = result["elapsed"]
        return {
            "senders": len(entries), "accepted": result["ok"], "failed": result["failed"],
            "delivered": delivered, "elapsed_s": elapsed,
            "requests_per_s": result["completed"] / elapsed if elapsed else None,
            "p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000,
            "max_ms": result["max_us"] / 1000,
            "cpu_s": {k: cpu_after[k] - cpu_before[k] for k in pids},
            "connections": self.args.cold_connections, "wrk_errors": result["errors"],
        }

    async def memory(self) -> dict[str, Any]:
        assert self.counter is not None
        gw = self.start_gateway()
        await asyncio.sleep(1.0)
        rss: dict[str, int] = {"0": procstat.rss_kib(gw.pid)}
        opened = 0
        failed = 0
        for target in self.args.memory_sessions:
            users = [cold_user(i) for i in range(opened, target)]
            self.log(f"memory: opening sessions {opened + 1}..{target}")
            entries = [self.gateway_target(gw, u) for u in users]
            connections = min(self.args.cold_connections, len(entries))
            result = await run_wrk(gw.url, entries, tag=self.tag("mem"),
                                   connections=connections, threads=min(2, connections),
                                   once=True, timeout_s=30)
            failed += result["failed"]
            opened = target
            await asyncio.sleep(2.0)
            rss[str(target)] = procstat.rss_kib(gw.pid)
        first, last = self.args.memory_sessions[0], self.args.memory_sessions[-1]
        per_session = (rss[str(last)] - rss[str(first)]) / (last - first)
        self.stop_gateway()
        return {"rss_kib": rss, "per_session_kib": per_session, "failed": failed}

    async def run(self) -> dict[str, Any]:
        args = self.args
        self.results["machine"] = machine()
        self.results["config"] = {k: v for k, v in vars(args).items() if k != "out"}
        await self.setup()
        cold_entries = [cold_user(i) for i in range(args.cold)]

        gw = self.start_gateway()
        pids = {"gateway": gw.pid, "prosody": self.prosody_pid}
        self.results["gateway"]["hot"] = await self.hot(
            "xmpp-post", gw.url, self.gateway_target(gw, HOT), None, pids)
        self.results["gateway"]["cold"] = await self.cold(
            "xmpp-post", gw.url, [self.gateway_target(gw, u) for u in cold_entries], None,
            pids)
        self.stop_gateway()

        if self.with_reference:
            ref_url = f"http://127.0.0.1:{self.server.http_port}/"
            ppids = {"prosody": self.prosody_pid}
            self.results["reference"]["hot"] = await self.hot(
                "the in-server baseline", ref_url, self.reference_target(HOT), DOMAIN, ppids)
            self.results["reference"]["cold"] = await self.cold(
                "the in-server baseline", ref_url,
                [self.reference_target(u) for u in cold_entries], DOMAIN, ppids)

        if args.memory_sessions:
            self.results["gateway"]["memory"] = await self.memory()
        return self.results


# report --------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".0f") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return format(value, spec)


def table(results: dict[str, Any]) -> str:
    gw, ref = results["gateway"], results["reference"]
    gh, rh = gw.get("hot", {}), ref.get("hot", {})
    gc, rc = gw.get("cold", {}), ref.get("cold", {})
    mem = gw.get("memory", {})

    def ratio(a: Any, b: Any) -> str:
        return f"{a / b:.1f}x" if a and b else "-"

    def cpu(section: dict[str, Any], key: str) -> Any:
        return section.get("cpu_s_per_1000", {}).get(key)

    def total_cpu(section: dict[str, Any]) -> Any:
        per = section.get("cpu_s_per_1000")
        return sum(v for v in per.values() if v is not None) if per else None

    conns = gh.get("connections", "?")
    rows = [
        (f"hot sender, 1 account, {conns} connections", "", "", "", ""),
        ("  accepted/s (201)", _fmt(gh.get("accepted_per_s")), _fmt(rh.get("accepted_per_s")),
         ratio(gh.get("accepted_per_s"), rh.get("accepted_per_s")), ""),
        ("  delivered/s", _fmt(gh.get("delivered_per_s")), _fmt(rh.get("delivered_per_s")),
         ratio(gh.get("delivered_per_s"), rh.get("delivered_per_s")), "≥ 20x"),
        ("  latency p50 (ms)", _fmt(gh.get("p50_ms"), ".2f"), _fmt(rh.get("p50_ms"), ".2f"),
         "", ""),
        ("  latency p99 (ms)", _fmt(gh.get("p99_ms"), ".2f"), _fmt(rh.get("p99_ms"), ".2f"),
         "", "≤ 10 ms"),
        ("  CPU s / 1000 msgs, gateway process", _fmt(cpu(gh, "gateway"), ".3f"), "", "", ""),
        ("  CPU s / 1000 msgs, Prosody process", _fmt(cpu(gh, "prosody"), ".3f"),
         _fmt(cpu(rh, "prosody"), ".3f"), "", ""),
        ("  CPU s / 1000 msgs, total", _fmt(total_cpu(gh), ".3f"), _fmt(total_cpu(rh), ".3f"),
         "", ""),
        ("  delivered == accepted",
         _fmt(gh.get("delivered_equals_accepted")) + f" ({gh.get('delivered', '-')})",
         _fmt(rh.get("delivered_equals_accepted")) + f" ({rh.get('delivered', '-')})"
         if rh else "-", "", "every 201"),
        (f"cold senders, {gc.get('senders', '?')} accounts, "
         f"{gc.get('connections', '?')} connections",
         "", "", "", ""),
        ("  requests/s", _fmt(gc.get("requests_per_s")), _fmt(rc.get("requests_per_s")),
         ratio(gc.get("requests_per_s"), rc.get("requests_per_s")), "≥ 0.5x"),
        ("  latency p99 (ms)", _fmt(gc.get("p99_ms"), ".1f"), _fmt(rc.get("p99_ms"), ".1f"),
         "", ""),
        ("  all accepted and delivered",
         _fmt(gc.get("accepted") == gc.get("senders") == gc.get("delivered")) if gc else "-",
         _fmt(rc.get("accepted") == rc.get("senders") == rc.get("delivered")) if rc else "-",
         "", ""),
        ("memory (gateway RSS)", "", "", "", ""),
    ]
    for count, kib in mem.get("rss_kib", {}).items():
        rows.append((f"  {count} pooled idle sessions (MiB)", _fmt(kib / 1024, ".1f"), "", "",
                     ""))
    rows.append(("  per session (KiB)", _fmt(mem.get("per_session_kib"), ".1f"), "", "",
                 "≤ 100 KiB"))
    head = ("", "xmpp-post", "in-server baseline", "ratio", "target")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of hot-sender load per target (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of unmeasured load before each hot run (default 2)")
    parser.add_argument("--connections", type=int, default=8,
                        help="keep-alive connections of the hot sender (default 8)")
    parser.add_argument("--cold", type=int, default=500,
                        help="distinct accounts posting once each (default 500)")
    parser.add_argument("--cold-connections", type=int, default=8,
                        help="concurrent connections for cold senders (default 8)")
    parser.add_argument("--memory-sessions", type=lambda s: [int(x) for x in s.split(",")
                                                               if x],
                        default=[1, 100, 1000],
                        help="pooled idle session counts to measure RSS at "
                             "(default 1,100,1000; empty to skip)")
    parser.add_argument("--gateway-arg", action="append", metavar="ARG",
                        help="extra argument for 'xmpp-post serve' (repeatable), "
                             "e.g. --gateway-arg=--log-level=warning")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample the gateway with py-spy during the hot and cold runs and "
                             "write collapsed stacks to DIR (slows the gateway; for profiling "
                             "only, not for figures)")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false",
                        default=importlib.util.find_spec("uvloop") is not None,
                        help="run the gateway on asyncio's own loop (default: --uvloop "
                             "when uvloop is installed)")
    parser.add_argument("--skip-reference", action="store_true",
                        help="do not measure the in-server baseline")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json",
                        help="where to write the raw figures (JSON)")
    args = parser.parse_args(argv)
    args.accounts = max([args.cold, *args.memory_sessions])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    bench = Bench(args)

    async def go() -> dict[str, Any]:
        try:
            return await bench.run()
        finally:
            await bench.teardown()

    results = asyncio.run(go())
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results["table"] = table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(results["table"])
    for note in results["notes"]:
        print(f"note: {note}")
    print(f"raw figures: {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
