"""How long the gateway's XMPP logins take:
``python -m bench.login [--concurrency N] [--direct-tls] [--no-quick-ack]``.

Opens sessions against a throwaway Prosody, ``--concurrency`` at a time (each a distinct
account, kept open until the end, as a pool keeps them), and prints logins per second
and the median and slowest login (connect, TLS, SCRAM, bind, stream management), with
this process's CPU time per login. ``--direct-tls`` logs in with direct TLS (XEP-0368)
instead of STARTTLS. ``--no-quick-ack`` turns off the gateway's TCP quick ACKs, to show
the stall they remove against servers that write with Nagle's algorithm (it shows when
logins overlap). Run on demand only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.model import Sender
from xmpp_post.xmpp import client as xmpp_client
from xmpp_post.xmpp import session


async def measure(server: ProsodyServer, logins: int, concurrency: int,
                  direct_tls: bool) -> tuple[list[float], float, float]:
    """The duration of each login, the wall time of all, and the CPU time of all."""
    port = server.direct_tls_port if direct_tls else server.c2s_port
    options = session.SessionOptions(server=("127.0.0.1", port), direct_tls=direct_tls,
                                     ca_file=server.cert_file)
    slots = asyncio.Semaphore(concurrency)
    times: list[float] = []
    opened: list[session.XmppSession] = []

    async def login(n: int) -> None:
        async with slots:
            client = session.XmppSession(Sender(f"bench{n}@{server.domain}", "bench"),
                                         options)
            started = time.perf_counter()
            await client.open()
            times.append(time.perf_counter() - started)
            opened.append(client)

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(login(n) for n in range(logins)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await asyncio.gather(*(client.close() for client in opened))
    return times, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1,
                        help="logins under way at once (default 1)")
    parser.add_argument("--direct-tls", action="store_true",
                        help="direct TLS (XEP-0368) instead of STARTTLS")
    parser.add_argument("--no-quick-ack", action="store_true",
                        help="leave the kernel's delayed ACKs on while logging in")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    args = parser.parse_args()
    if args.no_quick_ack:
        xmpp_client._quick_ack = lambda sock: None  # type: ignore[assignment]
    server = ProsodyServer(muc=False, direct_tls=args.direct_tls)
    server.start()
    try:
        for n in range(args.logins):
            server.register(f"bench{n}", "bench")
        work = measure(server, args.logins, args.concurrency, args.direct_tls)
        if args.uvloop:
            import uvloop
            times, wall, cpu = uvloop.run(work)
        else:
            times, wall, cpu = asyncio.run(work)
    finally:
        server.close()
    print(f"{len(times)} logins, {args.concurrency} at a time, "
          f"{'direct TLS' if args.direct_tls else 'STARTTLS'}, "
          f"quick ACK {'off' if args.no_quick_ack else 'on'}: {len(times) / wall:.0f} per "
          f"second, median {statistics.median(times) * 1000:.1f} ms, slowest "
          f"{max(times) * 1000:.1f} ms, {cpu / len(times) * 1000:.2f} ms of this "
          "process's CPU each")


if __name__ == "__main__":
    main()
