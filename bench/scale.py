"""Delivered messages per second with 1, 2 and 4 gateway instances behind HAProxy (running
deploy/haproxy.cfg, PROXY protocol, sender affinity), sharing their state in Redis, on
this machine; and where the CPU goes.

    python -m bench.scale [--instances 1,2,4] [--requests 12000] [--senders 32]

Starts a throwaway Prosody, Redis and HAProxy (``xmpp_post.lab``), registers a receiver
and ``--senders`` accounts, and a lean receiving client (``bench.counter``) that counts
every body (duplicates would show). For each instance count: the instances
(``python -m xmpp_post serve`` from this checkout, uvloop when installed) and HAProxy in
front; every sender posts once to open its session (not measured); then wrk
(``bench.load``) posts ``--requests`` messages, the senders in turn, over
``--connections`` keep-alive connections, and the table shows what the receiver got per
second, the latency, and the CPU seconds per 1000 messages of each kind of process. The
first row, "direct", is one instance without HAProxy and with its state in process: the
cost of the shared state and the proxy. Run on demand only: never as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import procstat
from bench.counter import BodyCounter, register_accounts
from bench.load import Entry, run_wrk
from xmpp_post.lab.haproxy import HaproxyServer
from xmpp_post.lab.instances import GatewayProcess
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.redis_server import RedisServer

REPO = Path(__file__).resolve().parents[1]
DOMAIN = "localhost"
RECEIVER = "rcv"


def password_of(user: str) -> str:
    return f"pw-{user}-secret"


def machine_busy() -> tuple[int, int]:
    """Busy and total clock ticks of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])
    return total - fields[3] - fields[4], total


class Scale:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.folder = Path(tempfile.mkdtemp(prefix="xmpp-post-scale-"))
        self.server = ProsodyServer(muc=False, registration=True)
        self.redis = RedisServer()
        self.counter: BodyCounter | None = None
        self.senders = [f"s{i:03d}" for i in range(args.senders)]
        self.secret = self.folder / "state-secret"
        self.serial = 0

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    async def setup(self) -> None:
        self.server.start()
        self.redis.start()
        self.secret.write_text(secrets.token_urlsafe(48))
        self.secret.chmod(0o600)
        users = [RECEIVER, *self.senders]
        await register_accounts(self.server.c2s_port, DOMAIN, self.server.cert_file,
                                [(u, password_of(u)) for u in users])
        self.counter = BodyCounter(RECEIVER, DOMAIN, password_of(RECEIVER),
                                   self.server.c2s_port, self.server.cert_file)
        await self.counter.start()

    async def teardown(self) -> None:
        if self.counter is not None:
            await self.counter.stop()
        self.redis.close()
        self.server.close()

    def gateway_args(self, shared: bool) -> list[str]:
        args = ["--domain", DOMAIN, "--xmpp-server", f"127.0.0.1:{self.server.c2s_port}",
                "--ca-file", str(self.server.cert_file), "--log-level", "warning",
                "--max-concurrent-requests", "1024"]
        if shared:
            args += ["--redis-url", self.redis.url, "--state-secret-file", str(self.secret),
                     "--proxy-protocol", "--trusted-proxy", "127.0.0.1/32"]
        if self.args.uvloop:
            args.append("--uvloop")
        return args

    def entries(self, count: int) -> list[Entry]:
        return [Entry(f"/msg/{RECEIVER}@{DOMAIN}", f"{u}@{DOMAIN}", password_of(u))
                for _, u in zip(range(count), self.senders * (count // len(self.senders) + 1),
                                strict=False)]

    async def post(self, url: str, count: int, connections: int) -> dict[str, Any]:
        assert self.counter is not None
        self.serial += 1
        tag = f"t{self.serial}"
        result = await run_wrk(url, self.entries(count), tag=tag, connections=connections,
                               threads=2, once=True, timeout_s=30)
        result["delivered"] = await self.counter.wait_for(tag, result["ok"], within=60,
                                                          settle=0.5)
        result["duplicates"] = self.counter.duplicates(tag)
        return result

    async def measure(self, label: str, instances: int, shared: bool) -> dict[str, Any]:
        gateways = [GatewayProcess(self.gateway_args(shared), self.folder / f"{label}-{n}.log")
                    for n in range(instances)]
        haproxy: HaproxyServer | None = None
        try:
            for gateway in gateways:
                gateway.launch()
            for gateway in gateways:
                await asyncio.to_thread(gateway.ready)
            url = gateways[0].url
            assert self.server._proc is not None
            pids = {"gateways": [g.pid for g in gateways],
                    "prosody": [procstat.descendant_named(self.server._proc.pid, "lua")]}
            if shared:
                haproxy = HaproxyServer(
                    (REPO / "deploy" / "haproxy.cfg").read_text(),
                    [(f"gw{n + 1}", "127.0.0.1", g.port) for n, g in enumerate(gateways)],
                    check_inter_ms=1000)
                await asyncio.to_thread(haproxy.start)
                await asyncio.to_thread(haproxy.wait_for,
                                        {f"gw{n + 1}": "UP" for n in range(instances)})
                url = haproxy.url
                pids |= {"haproxy": [haproxy.pid], "redis": [self.redis.pid]}
            self.log(f"{label}: opening {len(self.senders)} sessions")
            await self.post(url, len(self.senders), min(len(self.senders),
                                                          self.args.connections))
            self.log(f"{label}: {self.args.requests} messages")
            cpu = {k: sum(procstat.cpu_seconds(p) for p in v) for k, v in pids.items()}
            busy = machine_busy()
            result = await self.post(url, self.args.requests, self.args.connections)
            busy_after = machine_busy()
            used = {k: sum(procstat.cpu_seconds(p) for p in v) - cpu[k]
                    for k, v in pids.items()}
            if "cpu_s" in result:
                used["wrk"] = result["cpu_s"]
            elapsed = result["elapsed"] or 1.0
            delivered = result["delivered"]
            return {
                "instances": instances, "label": label, "accepted": result["ok"],
                "failed": result["failed"], "delivered": delivered,
                "duplicates": result["duplicates"], "elapsed_s": elapsed,
                "delivered_per_s": delivered / elapsed,
                "p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000,
                "cpu_s_per_1000": {k: v / delivered * 1000 if delivered else None
                                   for k, v in used.items()},
                "machine_busy": (busy_after[0] - busy[0]) / max(1, busy_after[1] - busy[1]),
                "wrk_errors": result["errors"],
            }
        finally:
            if haproxy is not None:
                haproxy.close()
            await asyncio.gather(*(asyncio.to_thread(g.stop, 30) for g in gateways))

    async def run(self) -> list[dict[str, Any]]:
        await self.setup()
        rows = []
        if self.args.direct:
            rows.append(await self.measure("direct", 1, shared=False))
        for count in self.args.instances:
            rows.append(await self.measure(f"{count} behind HAProxy", count, shared=True))
        return rows


def table(rows: list[dict[str, Any]]) -> str:
    kinds = [k for k in ("gateways", "prosody", "haproxy", "redis", "wrk")
             if any(row["cpu_s_per_1000"].get(k) is not None for row in rows)]
    head = ["instances", "delivered/s", "p50 ms", "p99 ms", "all delivered",
            *(f"CPU s/1000: {k}" for k in kinds), "machine busy"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for row in rows:
        per = row["cpu_s_per_1000"]
        cells = [row["label"], f"{row['delivered_per_s']:.0f}", f"{row['p50_ms']:.1f}",
                 f"{row['p99_ms']:.1f}",
                 "yes" if row["delivered"] == row["accepted"] and not row["duplicates"]
                 and not row["failed"] else "NO",
                 *(f"{per[k]:.3f}" if per.get(k) is not None else "-" for k in kinds),
                 f"{row['machine_busy']:.0%}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", default="1,2,4",
                        type=lambda s: [int(x) for x in s.split(",") if x],
                        help="instance counts to measure (default 1,2,4)")
    parser.add_argument("--requests", type=int, default=12000,
                        help="messages posted per measurement (default 12000)")
    parser.add_argument("--senders", type=int, default=32,
                        help="accounts taking turns, spread over the instances (default 32)")
    parser.add_argument("--connections", type=int, default=32,
                        help="wrk's keep-alive connections (default 32)")
    parser.add_argument("--no-direct", dest="direct", action="store_false",
                        help="skip the single instance without HAProxy and Redis")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false",
                        default=importlib.util.find_spec("uvloop") is not None,
                        help="run the gateways on asyncio's own loop")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scale.json",
                        help="where to write the raw figures (JSON)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    scale = Scale(args)

    async def go() -> list[dict[str, Any]]:
        try:
            return await scale.run()
        finally:
            await scale.teardown()

    rows = asyncio.run(go())
    text = table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                                    "config": {k: str(v) for k, v in vars(args).items()},
                                    "rows": rows, "table": text}, indent=2) + "\n")
    print(text)
    print(f"raw figures: {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
