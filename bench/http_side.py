"""The gateway's HTTP side alone, in this process: ``python -m bench.http_side [--floor]``.

Feeds one request after another (``POST /msg/rcv@example.org``, HTTP Basic, a
``text/plain`` body of 11 bytes, keep-alive) to the gateway's own HTTP connection
(``GatewayProtocol``) over a fake transport, with the relay faked and the sender taken as
proven by an open session, as on the hot path; prints the CPU time per request. No
sockets, no XMPP, no other process: the figure moves only with the code, so it compares
changes to the HTTP side to within a few per cent (the full benchmark, ``bench.run``,
drifts with the machine). ``--floor``: aiohttp alone answering the same request with the
same JSON, for what the gateway adds to it. Run on demand only: never as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import time
from typing import Any

from aiohttp import web

from xmpp_post import config
from xmpp_post.errors import UploadUnavailable
from xmpp_post.files import FileToSend, UploadedFile
from xmpp_post.http.server import GatewayRunner
from xmpp_post.model import OutgoingMessage, Receipt, Sender, SessionInfo
from xmpp_post.service import web_app

RECEIPT = {"id": "x1", "from": "hot@example.org", "to": "rcv@example.org", "type": "chat"}


class InstantRelay:
    """Delivers at once, as a session whose acknowledgement is already in."""

    async def deliver(self, sender: Sender, message: OutgoingMessage) -> Receipt:
        return Receipt(id="x1", sender=sender.jid, to=message.to, type=message.type)

    def verified(self, _sender: Sender) -> bool:
        return True  # its session proved the password: no login throttle

    async def login(self, _sender: Sender) -> None:
        pass

    def preview(self, message: OutgoingMessage) -> str:
        return ""

    def sessions(self) -> list[SessionInfo]:
        return []

    async def upload(self, sender: Sender, file: FileToSend,
                     encrypt: bool = False) -> UploadedFile:
        raise UploadUnavailable("this benchmark sends no files")

    def known_file_limit(self, domain: str) -> int | None:
        return None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class Transport(asyncio.Transport):
    """Collects what the connection writes."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.answered = asyncio.Event()

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))
        self.answered.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000),
                "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def gateway_app() -> web.Application:
    settings = config.load({"domain": ["example.org"]}, environ={})
    return web_app(settings, InstantRelay())


def floor_app() -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(RECEIPT, status=201)

    app = web.Application()
    app.router.add_post(r"/msg/{recipient:[\s\S]*}", answer)
    return app


async def measure(app: web.Application, requests: int) -> float:
    """CPU µs per request, after a warm-up."""
    runner = GatewayRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    credentials = base64.b64encode(b"hot@example.org:pw-hot-secret").decode()
    request = (f"POST /msg/rcv@example.org HTTP/1.1\r\nHost: gateway\r\n"
               f"Authorization: Basic {credentials}\r\nContent-Type: text/plain\r\n"
               "Content-Length: 11\r\n\r\nhello world").encode()
    connection = runner.server()
    transport = Transport()
    connection.connection_made(transport)

    async def one() -> None:
        transport.answered.clear()
        connection.data_received(request)
        await transport.answered.wait()

    try:
        for _ in range(500):
            await one()
        if b" 201 " not in transport.written[-1]:
            raise RuntimeError(f"not a 201: {transport.written[-1][:200]!r}")
        started = time.process_time()
        for _ in range(requests):
            await one()
        return (time.process_time() - started) / requests * 1e6
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=15000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--floor", action="store_true",
                        help="aiohttp alone, without the gateway's code")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    args = parser.parse_args()
    make = floor_app if args.floor else gateway_app
    run: Any = asyncio.run
    if args.uvloop:
        import uvloop
        run = uvloop.run
    rounds = [run(measure(make(), args.requests)) for _ in range(args.rounds)]
    label = "aiohttp alone" if args.floor else "the gateway's HTTP side"
    print(f"{label}: {statistics.median(rounds):.1f} µs of CPU per request "
          f"(median of {args.rounds} rounds of {args.requests}: "
          f"{', '.join(f'{r:.1f}' for r in rounds)})")


if __name__ == "__main__":
    main()
