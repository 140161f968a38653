"""What the state directory costs an idempotent request: ``python -m bench.state_store``.

The gateway's HTTP side in this process, as ``bench.http_side`` runs it (fake transport,
relay faked, the sender proven by an open session, HTTP Basic, keep-alive), with a new
``Idempotency-Key`` on every request, so every request claims a key and its answer is
kept: once with the answers in memory (``state.memory``), once in SQLite
(``--state-dir``: ``state.sqlite``, the default settings: 10,000 answers kept), and,
for reference, without the header. Prints the CPU time per request of each (all the
process's threads: the state's upkeep thread, which checkpoints, too), median of the
rounds (run one after the other in each round) and the best round, and what SQLite adds;
one request at a time, then eight at a time on eight connections.

Then the stall: eight tasks doing ``claim`` + ``finish`` on the SQLite store alone (the
upkeep running, checkpointing every 1,000 writes), then on the memory store: the wall
time of each pair, and the event loop's turns (how long the loop was busy between two
runs of a task that only yields: what anything else on the loop would wait), median,
99th and 99.9th percentiles and the longest, in µs; and how many of the SQLite pairs
waited in the kernel (a voluntary context switch of the loop's thread: the disk) rather
than being preempted by other processes (an involuntary one: the machine's load).

The state directory is a fresh temporary directory under ``--dir`` (default: the
system's temporary directory); its filesystem is printed, since the cost of a write
depends on it. Run on demand only: never as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.http_side import InstantRelay, Transport
from xmpp_post import config
from xmpp_post.http.server import GatewayRunner
from xmpp_post.service import memory_guards, web_app
from xmpp_post.state import IdempotencyStore, StoredAnswer
from xmpp_post.state.memory import MemoryIdempotencyStore
from xmpp_post.state.sqlite import SqliteIdempotencyStore, SqliteState

MODES = ("memory, no key", "memory", "sqlite")


def request(key: str | None) -> bytes:
    credentials = base64.b64encode(b"hot@example.org:pw-hot-secret").decode()
    header = f"Idempotency-Key: {key}\r\n" if key is not None else ""
    return (f"POST /msg/rcv@example.org HTTP/1.1\r\nHost: gateway\r\n"
            f"Authorization: Basic {credentials}\r\nContent-Type: text/plain\r\n{header}"
            "Content-Length: 11\r\n\r\nhello world").encode()


def app_with(settings: config.Config, state: SqliteState | None) -> web.Application:
    guards = dataclasses.replace(memory_guards(settings), verified=lambda sender: True)
    if state is not None:
        guards = dataclasses.replace(guards, key=state.key, idempotency=SqliteIdempotencyStore(
            state, window=settings.idempotency_window,
            max_entries=settings.idempotency_max_entries))
    return web_app(settings, InstantRelay(), guarded_by=guards)


async def measure(app: web.Application, requests: list[bytes], warmup: int,
                  connections: int = 1) -> float:
    """CPU µs per request over ``requests[warmup:]``, fed ``connections`` at a time (one
    to each keep-alive connection, then all their answers awaited)."""
    runner = GatewayRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    pairs = []
    for _ in range(connections):
        connection, transport = runner.server(), Transport()
        connection.connection_made(transport)
        pairs.append((connection, transport))
    try:
        started = 0.0
        for at in range(0, len(requests) - connections + 1, connections):
            if started == 0.0 and at >= warmup:
                started, counted = time.process_time(), len(requests) - at
            for (connection, transport), data in zip(pairs, requests[at:at + connections],
                                                     strict=True):
                transport.answered.clear()
                connection.data_received(data)
            for _, transport in pairs:
                await transport.answered.wait()
                answer = transport.written[-1]
                if b" 201 " not in answer or b"Replayed" in answer:
                    raise RuntimeError(f"not a fresh 201: {answer[:300]!r}")
        return (time.process_time() - started) / counted * 1e6
    finally:
        await runner.cleanup()


async def one_round(mode: str, count: int, warmup: int, where: Path, serial: str,
                    connections: int = 1) -> float:
    settings = config.load({"domain": ["example.org"]}, environ={})
    keyed = mode != "memory, no key"
    requests = [request(f"bench-{serial}-{n}" if keyed else None) for n in range(count)]
    if mode != "sqlite":
        return await measure(app_with(settings, None), requests, warmup, connections)
    state = SqliteState(Path(tempfile.mkdtemp(prefix="state-", dir=where)))
    await state.start()
    try:
        figure = await measure(app_with(settings, state), requests, warmup, connections)
        assert state.db is not None
        kept = state.db.execute("SELECT count(*) FROM answers").fetchone()[0]
        if kept < min(count, settings.idempotency_max_entries):
            raise RuntimeError(f"only {kept} answers kept")
        return figure
    finally:
        await state.close()


@dataclass
class Stalls:
    pairs: list[float] = field(default_factory=list)  # wall µs of each claim + finish
    turns: list[float] = field(default_factory=list)  # the event loop's turns, µs
    slow: int = 0  # pairs over a millisecond
    waited: int = 0  # ... during which the loop's thread waited in the kernel
    preempted: int = 0  # ... during which it was preempted


async def stalls(calls: int, where: Path, sqlite: bool = True, workers: int = 8) -> Stalls:
    """``workers`` tasks doing claim + finish (``calls`` in all) on the SQLite store (the
    upkeep running) or the memory store, and a task that only yields, timing the loop."""
    state = SqliteState(Path(tempfile.mkdtemp(prefix="state-", dir=where)))
    await state.start()
    store: IdempotencyStore = (
        SqliteIdempotencyStore(state, window=600, max_entries=10_000) if sqlite
        else MemoryIdempotencyStore(window=600, max_entries=10_000))
    answer = StoredAnswer(201, b'{"id": "x1", "from": "hot@example.org", '
                               b'"to": "rcv@example.org", "type": "chat"}')
    found = Stalls()
    done = asyncio.Event()
    serials = iter(range(calls))

    async def worker() -> None:
        for n in serials:
            before = resource.getrusage(resource.RUSAGE_THREAD)
            started = time.perf_counter()
            await store.claim(("hot@example.org scope", f"stall-{n}"), b"f" * 32)
            await store.finish(("hot@example.org scope", f"stall-{n}"), answer)
            took = (time.perf_counter() - started) * 1e6
            found.pairs.append(took)
            if took > 1000:
                after = resource.getrusage(resource.RUSAGE_THREAD)
                found.slow += 1
                found.waited += after.ru_nvcsw > before.ru_nvcsw
                found.preempted += after.ru_nivcsw > before.ru_nivcsw
            await asyncio.sleep(0)  # as a request would, between its steps

    async def ticker() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0)
            found.turns.append((time.perf_counter() - started) * 1e6)

    watching = asyncio.create_task(ticker())
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        done.set()
        await watching
        await state.close()
    found.pairs.sort()
    found.turns.sort()
    return found


def percentiles(values: list[float]) -> str:
    return (f"median {statistics.median(values):5.0f}, 99th {values[int(len(values) * 0.99)]:5.0f}"
            f", 99.9th {values[int(len(values) * 0.999)]:5.0f}, longest {values[-1]:6.0f}")


def filesystem(path: Path) -> str:
    best = ("?", "")
    for line in Path("/proc/mounts").read_text().splitlines():
        _, point, kind, *_ = line.split()
        if str(path.resolve()).startswith(point) and len(point) >= len(best[1]):
            best = (kind, point)
    return f"{best[0]} at {best[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=15000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=lambda text: [int(n) for n in text.split(",")],
                        default=[1, 8], help="requests at a time, e.g. 1,8 (default)")
    parser.add_argument("--stall-calls", type=int, default=20000)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    args = parser.parse_args()
    run: Any = asyncio.run
    if args.uvloop:
        import uvloop
        run = uvloop.run
    print(f"state directory on {filesystem(args.dir)}; {args.rounds} rounds of "
          f"{args.requests - args.warmup} requests (after {args.warmup} of warm-up); "
          "µs of CPU per request, median (each round)")
    for connections in args.connections:
        figures: dict[str, list[float]] = {mode: [] for mode in MODES}
        for n in range(args.rounds):
            for mode in MODES:
                figures[mode].append(run(one_round(mode, args.requests, args.warmup,
                                                   args.dir, f"{n}", connections)))
        median = {mode: statistics.median(values) for mode, values in figures.items()}
        best = {mode: min(values) for mode, values in figures.items()}
        print(f"{connections} request{'s' if connections > 1 else ''} at a time "
              "(median, best, every round):")
        for mode in MODES:
            label = mode if mode == "memory, no key" else f"Idempotency-Key, {mode} store"
            print(f"  {label:34} {median[mode]:6.1f} {best[mode]:6.1f}  "
                  f"({', '.join(f'{v:.1f}' for v in figures[mode])})")
        print(f"  SQLite adds {median['sqlite'] - median['memory']:.1f} µs per idempotent "
              f"request to the memory store ({best['sqlite'] - best['memory']:.1f} between "
              "the best rounds; target: under 50)")
    print(f"{args.stall_calls} claim + finish, 8 tasks at once, µs:")
    for name, sqlite in (("SQLite", True), ("memory", False)):
        found = run(stalls(args.stall_calls, args.dir, sqlite))
        print(f"  {name:6} each claim + finish: {percentiles(found.pairs)}")
        print(f"  {name:6} event loop turns:     {percentiles(found.turns)}")
        print(f"  {name:6} pairs over 1 ms: {found.slow}, of which the loop's thread waited "
              f"in the kernel in {found.waited}, was preempted in {found.preempted}")

if __name__ == "__main__":
    main()
