"""The physical ceiling: the cheapest sender Prosody can be fed by, for the benchmark.

    python -m bench.ceiling --port P --ca-file F --user U --password W --to JID --tag T

One XMPP session (STARTTLS, SASL PLAIN, bind; no XMPP library on the hot path) enables
stream management (XEP-0198) and writes pre-serialised ``<message/>`` stanzas in
batches, each batch followed by an ack request ``<r/>``, keeping at most ``--window``
stanzas unacknowledged; the server's ``<a h=.../>`` answers count what it accepted.
Bodies are ``<tag>:c:<n>``, unique, so the benchmark's receiver counts them like the
gateway's.

It speaks to the benchmark over its standard streams, so that the CPU time of each
phase can be read from /proc by the benchmark alone:

1. after logging in and a warm-up of ``--warmup`` seconds (tag ``<tag>w``), it prints
   ``ready {json}`` (the warm-up's figures) and waits for a line on standard input;
2. it then sends for ``--duration`` seconds, stops, waits until every stanza was
   acknowledged and prints ``done {json}``;
3. it closes the stream once standard input is closed (or after 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import re
import ssl
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.counter import open_session

_SM = "urn:xmpp:sm:3"
_ACK = re.compile(rb"<a\s[^>]*?h=['\"](\d+)['\"]")
_ACK_REQUEST = re.compile(rb"<r[\s/]")
_INBOUND = re.compile(rb"<(?:message|presence|iq)[\s>/]")
_REFUSAL = re.compile(rb"type=['\"]error['\"]|<stream:error|<failed")
REQUEST = f"<r xmlns='{_SM}'/>".encode()


@dataclass
class Outcome:
    """What one sending phase achieved (times in seconds)."""

    sent: int
    acked: int
    elapsed_s: float
    refusals: int

    @property
    def acked_per_s(self) -> float:
        return self.acked / self.elapsed_s if self.elapsed_s else 0.0


class Stanzas:
    """Pre-serialised messages to one recipient; only the running number varies."""

    def __init__(self, to: str, tag: str) -> None:
        self._head = (f"<message to='{to}' type='chat'><body>{tag}:c:").encode()
        self._tail = b"</body></message>"

    def batch(self, first: int, count: int) -> bytes:
        """``count`` stanzas numbered from ``first``, then an ack request."""
        glue = self._tail + self._head
        numbers = glue.join(str(n).encode() for n in range(first, first + count))
        return self._head + numbers + self._tail + REQUEST


class AckedSession:
    """A logged-in stream with XEP-0198 enabled; counts the server's acknowledgements."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sent = 0
        self.acked = 0
        self.inbound = 0
        self.refusals = 0
        self.closed = False
        self.progress = asyncio.Event()
        self._buffer = b""
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, port: int, domain: str, user: str, password: str,
                   ca_file: Path) -> AckedSession:
        tls = ssl.create_default_context(cafile=str(ca_file))
        reader, writer, rest = await open_session(port, domain, user, password, tls,
                                                  "bench-ceiling")
        writer.write(f"<enable xmlns='{_SM}'/>".encode())
        while b"<enabled" not in rest:
            if b"<failed" in rest:
                raise RuntimeError(f"the server refused stream management: {rest!r}")
            chunk = await reader.read(65536)
            if not chunk:
                raise RuntimeError("the XMPP server closed the stream")
            rest += chunk
        session = cls(reader, writer)
        session._buffer = rest[rest.index(b"<enabled"):]
        session._task = asyncio.ensure_future(session._read_forever())
        return session

    async def _read_forever(self) -> None:
        try:
            while True:
                self._scan()
                chunk = await self.reader.read(65536)
                if not chunk:
                    break
                self._buffer += chunk
        finally:
            self.closed = True
            self.progress.set()

    def _scan(self) -> None:
        cut = self._buffer.rfind(b">") + 1
        if not cut:
            return
        done, self._buffer = self._buffer[:cut], self._buffer[cut:]
        acks = _ACK.findall(done)
        if acks:
            self.acked = max(self.acked, int(acks[-1]))
            self.progress.set()
        self.refusals += len(_REFUSAL.findall(done))
        self.inbound += len(_INBOUND.findall(done))
        if _ACK_REQUEST.search(done):
            self.writer.write(f"<a xmlns='{_SM}' h='{self.inbound}'/>".encode())

    async def _until_acked(self, count: int, within: float) -> None:
        async with asyncio.timeout(within):
            while self.acked < count and not self.closed:
                self.progress.clear()
                await self.progress.wait()
        if self.acked < count:
            raise RuntimeError(f"the stream closed with {count - self.acked} unacknowledged")

    async def send_for(self, seconds: float, stanzas: Stanzas, *, window: int,
                       batch: int) -> Outcome:
        """Send for ``seconds`` with at most ``window`` unacknowledged; then drain."""
        loop = asyncio.get_running_loop()
        first = self.sent
        acked_before, refusals_before = self.acked, self.refusals
        started = loop.time()
        deadline = started + seconds
        number = 0
        while loop.time() < deadline and not self.closed:
            if self.sent - self.acked > window - batch:
                await self._until_acked(self.sent + batch - window, 30.0)
                continue
            self.writer.write(stanzas.batch(number, batch))
            number += batch
            self.sent += batch
            await self.writer.drain()
        await self._until_acked(self.sent, 30.0)
        elapsed = loop.time() - started
        return Outcome(sent=self.sent - first, acked=self.acked - acked_before,
                       elapsed_s=elapsed, refusals=self.refusals - refusals_before)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            self.writer.write(b"</stream:stream>")
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)


def _report(word: str, outcome: Outcome) -> None:
    figures = {**asdict(outcome), "acked_per_s": outcome.acked_per_s}
    print(f"{word} {json.dumps(figures)}", flush=True)


async def _standard_input() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run(args: argparse.Namespace) -> None:
    session = await AckedSession.open(args.port, args.domain, args.user, args.password,
                                      args.ca_file)
    try:
        warm = await session.send_for(args.warmup, Stanzas(args.to, f"{args.tag}w"),
                                      window=args.window, batch=args.batch)
        _report("ready", warm)
        commands = await _standard_input()
        await commands.readline()
        outcome = await session.send_for(args.duration, Stanzas(args.to, args.tag),
                                         window=args.window, batch=args.batch)
        _report("done", outcome)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(commands.read(), 60.0)
    finally:
        await session.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="the server's c2s port")
    parser.add_argument("--ca-file", type=Path, required=True)
    parser.add_argument("--domain", default="localhost")
    parser.add_argument("--user", required=True, help="local part of the sending account")
    parser.add_argument("--password", required=True)
    parser.add_argument("--to", required=True, help="the recipient's JID")
    parser.add_argument("--tag", required=True, help="first part of every body")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--window", type=int, default=256,
                        help="most stanzas left unacknowledged (default 256)")
    parser.add_argument("--batch", type=int, default=64,
                        help="stanzas per write, each write ending in <r/> (default 64)")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false",
                        default=importlib.util.find_spec("uvloop") is not None)
    args = parser.parse_args(argv)
    if not 0 < args.batch <= args.window:
        parser.error("need 0 < --batch <= --window")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.uvloop:
        import uvloop

        uvloop.run(run(args))
    else:
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
