"""How long one XMPP login of the gateway takes: ``python -m bench.login [--no-quick-ack]``.

Opens sessions one after another against a throwaway Prosody and prints the median and
fastest login (connect, STARTTLS, SCRAM, bind, stream management). ``--no-quick-ack``
turns off the gateway's TCP quick ACKs, to show the stall they remove against servers
that write with Nagle's algorithm. Run on demand only.
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


async def measure(server: ProsodyServer, logins: int) -> list[float]:
    options = session.SessionOptions(server=("127.0.0.1", server.c2s_port),
                                     ca_file=server.cert_file)
    times = []
    for _ in range(logins):
        client = session.XmppSession(Sender(f"bench@{server.domain}", "bench"), options)
        started = time.perf_counter()
        await client.open()
        times.append(time.perf_counter() - started)
        await client.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=30)
    parser.add_argument("--no-quick-ack", action="store_true",
                        help="leave the kernel's delayed ACKs on while logging in")
    args = parser.parse_args()
    if args.no_quick_ack:
        xmpp_client._quick_ack = lambda sock: None  # type: ignore[assignment]
    server = ProsodyServer(muc=False)
    server.start()
    try:
        server.register("bench", "bench")
        times = asyncio.run(measure(server, args.logins))
    finally:
        server.close()
    print(f"{len(times)} logins, quick ACK {'off' if args.no_quick_ack else 'on'}: "
          f"median {statistics.median(times) * 1000:.1f} ms, "
          f"fastest {min(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
