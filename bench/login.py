"""How long the gateway's XMPP logins take, and what they cost both processes:
``python -m bench.login [--concurrency N] [--direct-tls] [--returning] [--no-quick-ack]``.

Opens sessions against a throwaway Prosody, ``--concurrency`` at a time (each a distinct
account, kept open until the end, as a pool keeps them), and prints logins per second
and the median and slowest login (connect, TLS, SCRAM, bind, stream management), with
the CPU time per login of this process (the gateway's side) and of Prosody, and how much
Prosody's RSS grew per session (without ``--returning``: a fresh Prosody).
``--returning`` logs every account in once, unmeasured, closes those sessions, and
measures the second round: returning senders, whose SCRAM SaltedPassword the gateway
kept (``xmpp.salted``). ``--direct-tls`` logs in with direct TLS (XEP-0368) instead of
STARTTLS. ``--no-quick-ack`` turns off the gateway's TCP quick ACKs, to show the stall
they remove against servers that write with Nagle's algorithm (it shows when logins
overlap). One at a time (the default), it also prints the CPU of each part of a login.
``--profile DIR`` samples this process with py-spy and Prosody with perf while
the measured round runs. Run on demand only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path

from bench import procstat
from bench.counter import register_accounts
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.model import Sender
from xmpp_post.xmpp import client as xmpp_client
from xmpp_post.xmpp import session
from xmpp_post.xmpp.salted import SaltedPasswords


class Round:
    """Figures of one round of logins."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.wall = self.cpu = self.prosody_cpu = 0.0
        self.prosody_rss_kib = 0  # Prosody's RSS growth while the sessions opened
        self.phases: dict[str, list[float]] = {name: [] for name, _ in PHASES}


# The parts of a login, each ending at a slixmpp event (the last when open() returns).
PHASES = (("build the client", ""), ("TCP, TLS handshake", "connected"),
          ("stream header and features, SCRAM", "auth_success"),
          ("stream restart, bind", "session_bind"),
          ("stream management, session ready", ""))


async def measure(server: ProsodyServer, logins: int, concurrency: int, direct_tls: bool,
                  salted: SaltedPasswords, prosody_pid: int) -> Round:
    """Open ``logins`` sessions, ``concurrency`` at a time; close them after."""
    port = server.direct_tls_port if direct_tls else server.c2s_port
    options = session.SessionOptions(server=("127.0.0.1", port), direct_tls=direct_tls,
                                     ca_file=server.cert_file)
    slots = asyncio.Semaphore(concurrency)
    figures = Round()
    opened: list[session.XmppSession] = []

    async def login(n: int) -> None:
        async with slots:
            jid = f"bench{n}@{server.domain}"
            memo = salted.login(jid, hashlib.sha256(b"bench").digest())
            marks = [time.process_time()]
            client = session.XmppSession(Sender(jid, "bench"), options, salted=memo)
            marks.append(time.process_time())
            for _, event in PHASES[1:-1]:
                client._client.add_event_handler(
                    event, lambda _event: marks.append(time.process_time()))
            started = time.perf_counter()
            await client.open()
            figures.times.append(time.perf_counter() - started)
            marks.append(time.process_time())
            opened.append(client)
            if concurrency == 1 and len(marks) == len(PHASES) + 1:  # CPU of this login
                for (name, _), begin, end in zip(PHASES, marks, marks[1:], strict=False):
                    figures.phases[name].append(end - begin)

    wall, cpu = time.perf_counter(), time.process_time()
    prosody, rss = procstat.cpu_seconds(prosody_pid), procstat.rss_kib(prosody_pid)
    await asyncio.gather(*(login(n) for n in range(logins)))
    figures.wall, figures.cpu = time.perf_counter() - wall, time.process_time() - cpu
    figures.prosody_cpu = procstat.cpu_seconds(prosody_pid) - prosody
    figures.prosody_rss_kib = procstat.rss_kib(prosody_pid) - rss
    await asyncio.gather(*(client.close() for client in opened))
    return figures


async def rounds(server: ProsodyServer, args: argparse.Namespace) -> Round:
    assert server._proc is not None
    prosody_pid = procstat.descendant_named(server._proc.pid, "lua")
    await register_accounts(server.c2s_port, server.domain, server.cert_file,
                            [(f"bench{n}", "bench") for n in range(args.logins)])
    salted = SaltedPasswords(args.logins)
    if args.returning:
        await measure(server, args.logins, args.concurrency, args.direct_tls, salted,
                      prosody_pid)
    spies = start_profilers(args.profile, prosody_pid) if args.profile else []
    try:
        return await measure(server, args.logins, args.concurrency, args.direct_tls, salted,
                             prosody_pid)
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait()


def start_profilers(folder: Path, prosody_pid: int) -> list[subprocess.Popen[bytes]]:
    folder.mkdir(parents=True, exist_ok=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    spies = [subprocess.Popen(["py-spy", "record", "--pid", str(os.getpid()), "--format",
                               "raw", "--rate", "500", "--nonblocking", "--output",
                               str(folder / "gateway.txt")], **quiet),  # type: ignore[call-overload]
             subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(prosody_pid),
                               "-o", str(folder / "prosody.perf")], **quiet)]  # type: ignore[call-overload]
    time.sleep(1.0)  # both attached before the round starts
    return spies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1,
                        help="logins under way at once (default 1)")
    parser.add_argument("--direct-tls", action="store_true",
                        help="direct TLS (XEP-0368) instead of STARTTLS")
    parser.add_argument("--returning", action="store_true",
                        help="measure a second round of the same accounts (their SCRAM "
                             "SaltedPassword kept from the first)")
    parser.add_argument("--no-quick-ack", action="store_true",
                        help="leave the kernel's delayed ACKs on while logging in")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="py-spy of this process (DIR/gateway.txt) and perf of Prosody "
                             "(DIR/prosody.perf) during the measured round")
    args = parser.parse_args()
    if args.no_quick_ack:
        xmpp_client._quick_ack = lambda sock: None  # type: ignore[assignment]
    server = ProsodyServer(muc=False, direct_tls=args.direct_tls, registration=True)
    server.start()
    try:
        work = rounds(server, args)
        if args.uvloop:
            import uvloop
            figures = uvloop.run(work)
        else:
            figures = asyncio.run(work)
    finally:
        server.close()
    times, count = figures.times, len(figures.times)
    print(f"{count} {'returning' if args.returning else 'first'} logins, {args.concurrency} "
          f"at a time, {'direct TLS' if args.direct_tls else 'STARTTLS'}, quick ACK "
          f"{'off' if args.no_quick_ack else 'on'}: {count / figures.wall:.0f} per second, "
          f"median {statistics.median(times) * 1000:.1f} ms, slowest "
          f"{max(times) * 1000:.1f} ms; CPU per login: this process (the gateway's side) "
          f"{figures.cpu / count * 1000:.2f} ms, Prosody "
          f"{figures.prosody_cpu / count * 1000:.2f} ms; Prosody's RSS grew "
          f"{figures.prosody_rss_kib / count:.1f} KiB per open session")
    for name, values in figures.phases.items():
        if values:
            print(f"  {name}: {statistics.median(values) * 1000:.2f} ms of this process's "
                  "CPU (median)")


if __name__ == "__main__":
    main()
