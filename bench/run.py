"""The xmpp-post benchmark: the gateway beside its ceiling and the in-server baseline.

    python -m bench.run [--duration 10] [--out bench/results/latest.json]

Starts a throwaway Prosody (with ``mod_http_msg_reference`` from ``shared/reference``
when that folder exists, ``--reference``) and a lean receiving XMPP client that counts
what arrives; then, in one run on that Prosody and receiver: the ceiling
(``bench.ceiling``, the cheapest sender: one XEP-0198 session writing pre-built
stanzas), the gateway as its own process (``xmpp-post serve``) under ``wrk`` (a hot
sender, first-time senders, and the same senders returning once the idle timeout closed
their sessions), the ceiling again, and the baseline under ``wrk``.
Prints one table (delivered/s, share of the ceiling, CPU µs per message of each process)
and writes the raw figures as JSON. Run on demand only: never as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench import procstat, report
from bench.counter import BodyCounter, register_accounts
from bench.load import Entry, run_wrk
from bench.options import parse_args
from bench.processes import DOMAIN, gateway_args, machine, open_sessions
from xmpp_post.lab.instances import GatewayProcess
from xmpp_post.lab.prosody import ProsodyServer

REPO = Path(__file__).resolve().parents[1]
RECEIVER = "rcv"
HOT = "hot"
CEILING = "ceil"


def password_of(user: str) -> str:
    return f"pw-{user}-secret"


def cold_user(i: int) -> str:
    return f"u{i:04d}"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.results: dict[str, Any] = {"scenarios": {}, "notes": []}
        self.with_reference = args.reference.is_dir() and not args.skip_reference
        self.server = ProsodyServer(
            muc=False, registration=True, direct_tls=not args.starttls,
            plugin_paths=[str(args.reference)] if self.with_reference else [],
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
                f"{self.args.reference} not found (or --skip-reference): baseline rows skipped")
        self.server.prepare()
        self.server.start()
        assert self.server._proc is not None
        self.prosody_pid = procstat.descendant_named(self.server._proc.pid, "lua")
        users = [RECEIVER, HOT, CEILING] + [cold_user(i) for i in range(self.args.accounts)]
        self.log(f"registering {len(users)} accounts")
        await register_accounts(self.server.c2s_port, DOMAIN, self.server.cert_file,
                                [(u, password_of(u)) for u in users])
        self.counter = BodyCounter(RECEIVER, DOMAIN, password_of(RECEIVER),
                                   self.server.c2s_port, self.server.cert_file)
        await self.counter.start()

    def start_gateway(self, idle_timeout: float = 3600) -> GatewayProcess:
        assert self.server.workdir is not None
        # Direct TLS (XEP-0368) where the server offers it, as an operator would configure
        # it: two round trips fewer per login than STARTTLS (--starttls to compare).
        port, tls = ((self.server.c2s_port, []) if self.args.starttls
                     else (self.server.direct_tls_port, ["--direct-tls"]))
        args = gateway_args(port, self.server.cert_file,
                            [*tls, *(self.args.gateway_arg or [])], uvloop=self.args.uvloop,
                            idle_timeout=idle_timeout)
        gateway = GatewayProcess(args, self.server.workdir / "gateway.log")
        gateway.start()
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

    def gateway_target(self, user: str) -> Entry:
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

    async def delivered(self, tag: str, expected: int, pids: dict[str, int],
                        before: procstat.Reading, settle: float,
                        ) -> tuple[int, procstat.Usage]:
        """Wait for ``expected`` bodies of ``tag``; read the CPU the moment they are all in
        (so the receiver's backlog counts), then count again after ``settle`` seconds, so
        that late duplicates would show."""
        assert self.counter is not None
        await self.counter.wait_for(tag, expected, within=30, settle=0)
        usage = before.until(procstat.Reading.now(pids))
        await asyncio.sleep(settle)
        return self.counter.count(tag), usage

    async def hot(self, name: str, url: str, entry: Entry, host: str | None,
                  pids: dict[str, int]) -> dict[str, Any]:
        assert self.counter is not None
        warm_tag = self.tag("warm")
        warm = await run_wrk(url, [entry], tag=warm_tag, connections=self.args.connections,
                             seconds=self.args.warmup, host=host)
        await self.counter.wait_for(warm_tag, warm["ok"], settle=0.2)
        tag = self.tag("hot")
        pids = {**pids, "receiver": os.getpid()}
        before = procstat.Reading.now(pids)
        self.log(f"hot sender against {name} for {self.args.duration:g} s")
        spy = await self.profiled("hot", pids.get("gateway"))
        result = await run_wrk(url, [entry], tag=tag, connections=self.args.connections,
                               seconds=self.args.duration, host=host)
        await self.end_profile(spy)
        accepted = result["ok"]
        delivered, usage = await self.delivered(tag, accepted, pids, before, settle=1.0)
        cpu = {**usage.cpu_s, "load": result["cpu_s"]}
        elapsed = result["elapsed"] or self.args.duration
        duplicates = self.counter.duplicates(tag)
        return {
            "requests": result["completed"], "accepted": accepted, "failed": result["failed"],
            "delivered": delivered, "duplicates": duplicates,
            "exactly_once": delivered == accepted and not duplicates,
            "elapsed_s": elapsed, "accepted_per_s": accepted / elapsed,
            "delivered_per_s": delivered / elapsed,
            "p50_ms": result["p50_us"] / 1000, "p90_ms": result["p90_us"] / 1000,
            "p99_ms": result["p99_us"] / 1000, "max_ms": result["max_us"] / 1000,
            "cpu_s": cpu, "cpu_us_per_msg": procstat.per_message(cpu, delivered),
            **procstat.machine_load(usage, cpu),
            "wrk_errors": result["errors"], "connections": self.args.connections,
        }

    async def cold(self, name: str, url: str, entries: list[Entry], host: str | None,
                   pids: dict[str, int]) -> dict[str, Any]:
        assert self.counter is not None
        tag = self.tag("cold")
        self.log(f"{len(entries)} cold senders against {name}")
        pids = {**pids, "receiver": os.getpid()}
        before = procstat.Reading.now(pids)
        spy = await self.profiled("cold", pids.get("gateway"))
        result = await run_wrk(url, entries, tag=tag, connections=self.args.cold_connections,
                               once=True, host=host, timeout_s=30)
        await self.end_profile(spy)
        delivered, usage = await self.delivered(tag, result["ok"], pids, before, settle=0.5)
        cpu = {**usage.cpu_s, "load": result["cpu_s"]}
        elapsed = result["elapsed"]
        return {
            "senders": len(entries), "accepted": result["ok"], "failed": result["failed"],
            "delivered": delivered, "duplicates": self.counter.duplicates(tag),
            "exactly_once": result["ok"] == len(entries) == delivered
            and not self.counter.duplicates(tag),
            "elapsed_s": elapsed,
            "requests_per_s": result["completed"] / elapsed if elapsed else None,
            "delivered_per_s": delivered / elapsed if elapsed else None,
            "p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000,
            "max_ms": result["max_us"] / 1000,
            "cpu_s": cpu, "cpu_us_per_msg": procstat.per_message(cpu, delivered),
            **procstat.machine_load(usage, cpu),
            "connections": self.args.cold_connections, "wrk_errors": result["errors"],
        }

    async def ceiling(self, label: str) -> dict[str, Any]:
        """The cheapest sender (``bench.ceiling``, its own process) on the same Prosody."""
        assert self.counter is not None
        tag = self.tag("ceil")
        args = self.args
        self.log(f"ceiling ({label}) for {args.duration:g} s after {args.warmup:g} s warm-up")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.ceiling", "--port", str(self.server.c2s_port),
            "--ca-file", str(self.server.cert_file), "--domain", DOMAIN, "--user", CEILING,
            "--password", password_of(CEILING), "--to", f"{RECEIVER}@{DOMAIN}", "--tag", tag,
            "--duration", str(args.duration), "--warmup", str(args.warmup),
            "--window", str(args.ceiling_window), "--batch", str(args.ceiling_batch),
            *([] if args.uvloop else ["--no-uvloop"]),
            cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            warm = await _report_line(proc.stdout, "ready", 60)
            await self.counter.wait_for(f"{tag}w", warm["acked"], settle=0.2)
            pids = {"prosody": self.prosody_pid, "receiver": os.getpid(), "load": proc.pid}
            before = procstat.Reading.now(pids)
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
            done = await _report_line(proc.stdout, "done", args.duration + 60)
            delivered, usage = await self.delivered(tag, done["acked"], pids, before, settle=1.0)
        finally:
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        duplicates = self.counter.duplicates(tag)
        cpu = usage.cpu_s
        return {
            "sent": done["sent"], "acked": done["acked"], "refusals": done["refusals"],
            "delivered": delivered, "duplicates": duplicates,
            "exactly_once": done["sent"] == done["acked"] == delivered
            and not duplicates and not done["refusals"],
            "elapsed_s": done["elapsed_s"], "acked_per_s": done["acked_per_s"],
            "delivered_per_s": delivered / done["elapsed_s"],
            "cpu_s": cpu, "cpu_us_per_msg": procstat.per_message(cpu, delivered),
            **procstat.machine_load(usage, cpu),
            "window": args.ceiling_window, "batch": args.ceiling_batch,
        }

    async def sessions_closed(self, gw: GatewayProcess, within: float) -> float:
        """Wait until the gateway has no XMPP session open (its /metrics) and it and
        Prosody have finished closing them (both idle for half a second); the seconds."""
        self.log("waiting for the idle timeout to close the gateway's sessions")
        started = time.monotonic()
        pids = (gw.pid, self.prosody_pid)
        used, busy = sum(procstat.cpu_seconds(pid) for pid in pids), 1.0
        while (open_now := await open_sessions(gw.url)) > 0 or busy > 0.01:
            if time.monotonic() - started > within:
                raise RuntimeError(f"{open_now:g} sessions still open after {within:g} s")
            await asyncio.sleep(0.5)
            now = sum(procstat.cpu_seconds(pid) for pid in pids)
            used, busy = now, now - used
        return time.monotonic() - started

    async def memory(self) -> dict[str, Any]:
        assert self.counter is not None
        gw = self.start_gateway()
        await asyncio.sleep(1.0)
        rss: dict[str, int] = {"0": procstat.rss_kib(gw.pid)}
        server_rss: dict[str, int] = {"0": procstat.rss_kib(self.prosody_pid)}
        opened = 0
        failed = 0
        for target in self.args.memory_sessions:
            users = [cold_user(i) for i in range(opened, target)]
            self.log(f"memory: opening sessions {opened + 1}..{target}")
            entries = [self.gateway_target(u) for u in users]
            connections = min(self.args.cold_connections, len(entries))
            result = await run_wrk(gw.url, entries, tag=self.tag("mem"),
                                   connections=connections, threads=min(2, connections),
                                   once=True, timeout_s=30)
            failed += result["failed"]
            opened = target
            await asyncio.sleep(2.0)
            rss[str(target)] = procstat.rss_kib(gw.pid)
            server_rss[str(target)] = procstat.rss_kib(self.prosody_pid)
        first, last = (str(n) for n in (self.args.memory_sessions[0],
                                        self.args.memory_sessions[-1]))
        count = int(last) - int(first)
        self.stop_gateway()
        return {"rss_kib": rss, "per_session_kib": (rss[last] - rss[first]) / count,
                "prosody_rss_kib": server_rss,
                "prosody_per_session_kib": (server_rss[last] - server_rss[first]) / count,
                "failed": failed}

    async def run(self) -> dict[str, Any]:
        args = self.args
        scenarios = self.results["scenarios"]
        self.results["machine"] = machine()
        self.results["config"] = {k: v for k, v in vars(args).items() if k != "out"}
        await self.setup()
        cold_entries = [cold_user(i) for i in range(args.cold)]

        if not args.skip_ceiling:
            scenarios["ceiling_before"] = await self.ceiling("before")

        returning = args.returning_idle_timeout
        gw = self.start_gateway(returning or 3600)
        pids = {"gateway": gw.pid, "prosody": self.prosody_pid}
        scenarios["gateway_hot"] = await self.hot(
            "xmpp-post", gw.url, self.gateway_target(HOT), None, pids)
        cold_targets = [self.gateway_target(u) for u in cold_entries]
        scenarios["gateway_cold"] = await self.cold("xmpp-post", gw.url, cold_targets, None,
                                                    pids)
        if returning:
            # The same accounts once their sessions were closed by the idle timeout: what
            # the gateway keeps of a sender between its sessions makes the difference.
            waited = await self.sessions_closed(gw, within=2 * returning + 30)
            scenarios["gateway_returning"] = await self.cold(
                "xmpp-post (returning)", gw.url, cold_targets, None, pids)
            scenarios["gateway_returning"]["waited_for_idle_close_s"] = waited
        self.stop_gateway()

        # Right after the gateway, before the baseline's password checks: so both ceiling
        # runs bracket the gateway's, on a Prosody in the same state.
        if not args.skip_ceiling:
            scenarios["ceiling_after"] = await self.ceiling("after")
            self.results["ceiling_per_s"] = report.ceiling_per_s(scenarios)

        if self.with_reference:
            ref_url = f"http://127.0.0.1:{self.server.http_port}/"
            ppids = {"prosody": self.prosody_pid}
            scenarios["reference_hot"] = await self.hot(
                "the in-server baseline", ref_url, self.reference_target(HOT), DOMAIN, ppids)
            scenarios["reference_cold"] = await self.cold(
                "the in-server baseline", ref_url,
                [self.reference_target(u) for u in cold_entries], DOMAIN, ppids)

        if args.memory_sessions:
            self.results["memory"] = await self.memory()
        return self.results


async def _report_line(stdout: asyncio.StreamReader, word: str,
                       within: float) -> dict[str, Any]:
    """The JSON of the ceiling sender's next ``<word> {json}`` line."""
    line = await asyncio.wait_for(stdout.readline(), within)
    head, _, figures = line.decode().partition(" ")
    if head != word:
        raise RuntimeError(f"the ceiling sender said {line!r}, not {word!r}")
    answer: dict[str, Any] = json.loads(figures)
    return answer


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__)
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
    results["table"] = report.table(results)
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
