"""See a message arrive: a throwaway Prosody, two accounts, the gateway, and curl.

``python -m xmpp_post.lab.demo`` starts everything on loopback, posts one message with
curl as alice to bob, prints what bob's client received, then keeps running (until
Ctrl-C) so you can try your own requests; ``--once`` exits after the first message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal
import subprocess
import sys

from xmpp_post.lab.prosody import ProsodyServer, free_port
from xmpp_post.lab.receiver import Receiver

ALICE, BOB, PASSWORD = "alice", "bob", "demo-password"


async def _wait_for_http(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the gateway exited at start; see its log above")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise TimeoutError("the gateway did not start listening")


async def run(once: bool) -> int:
    prosody = ProsodyServer()
    prosody.start()
    gateway: subprocess.Popen[bytes] | None = None
    try:
        prosody.register(ALICE, PASSWORD)
        prosody.register(BOB, PASSWORD)
        port = free_port()
        gateway = subprocess.Popen(
            [sys.executable, "-m", "xmpp_post", "serve", "--domain", prosody.domain,
             "--listen", f"127.0.0.1:{port}", "--xmpp-server", f"127.0.0.1:{prosody.c2s_port}",
             "--ca-file", str(prosody.cert_file)])
        await _wait_for_http(port, gateway, 15)
        bob = Receiver(f"{BOB}@{prosody.domain}", PASSWORD, prosody.c2s_port,
                       prosody.cert_file, resource="demo")
        await bob.start()
        curl = ["curl", "-sS", f"http://127.0.0.1:{port}/msg/{BOB}",
                "-u", f"{ALICE}@{prosody.domain}:{PASSWORD}",
                "-H", "Content-Type: text/plain", "-d", "Hello from xmpp-post!"]
        print(f"\n$ {shlex.join(curl)}", flush=True)
        done = await asyncio.create_subprocess_exec(*curl)
        await done.wait()
        got = await bob.next(15)
        print(f"\n\n{BOB}@{prosody.domain} received from {got.sender}: {got.body!r}\n")
        if not once:
            print(f"The gateway keeps running at http://127.0.0.1:{port}/msg; accounts "
                  f"{ALICE} and {BOB}, password {PASSWORD!r}. Ctrl-C stops everything.",
                  flush=True)
            stop = asyncio.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):  # either way, clean up everything
                asyncio.get_running_loop().add_signal_handler(signum, stop.set)
            waiter = asyncio.ensure_future(stop.wait())
            while not stop.is_set():
                getter = asyncio.ensure_future(bob.inbox.get())
                finished, _ = await asyncio.wait({waiter, getter},
                                                 return_when=asyncio.FIRST_COMPLETED)
                if getter in finished:
                    message = getter.result()
                    print(f"{BOB} received from {message.sender}: {message.body!r}", flush=True)
                else:
                    getter.cancel()
        await bob.stop()
        return 0
    finally:
        if gateway is not None:
            gateway.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                gateway.wait(20)
        prosody.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--once", action="store_true", help="exit after the first message")
    return asyncio.run(run(parser.parse_args().once))


if __name__ == "__main__":
    sys.exit(main())
