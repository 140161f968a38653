"""What each step of an XMPP login costs Prosody, measured with a client that costs
next to nothing: ``python -m bench.login_steps [--logins 300] [--concurrency 8]``.

A raw client (no XMPP library; direct TLS, XEP-0368) logs ``--logins`` distinct
accounts in, ``--concurrency`` at a time, stopping after a given step, and keeps each
connection open until the round ends (as a pool would); Prosody's CPU time per login is
read from /proc. Each row adds one step to the one above, so the differences are what
each step costs the server:

1. ``tls``: TCP connect and the TLS handshake;
2. ``stream``: the stream header and Prosody's stream features;
3. ``sasl``: SCRAM-SHA-1 (client-first, server-first, client-final, success), with the
   SaltedPassword kept from an unmeasured first round, as the gateway keeps it;
4. ``bind``: the stream restart and resource binding;
5. ``sm``: XEP-0198 stream management enabled (what the gateway's login is);
6. ``message``: then one ``<message/>`` to a receiver online, with an ack request, until
   the server's ``<a/>``: what a cold sender's request costs Prosody through the gateway;
7. ``pipelined``: ``message`` in four writes instead of seven: the stream header with
   SCRAM's first message (the mechanisms known from an earlier login, XEP-0305), then
   its final message, then the restart with the bind and the ``<enable/>``, then the
   message;
8. ``baseline``: for comparison, one request to the in-server baseline
   (``mod_http_msg_reference``, which checks the password with PBKDF2 on each request)
   per account, over ``--concurrency`` keep-alive HTTP connections, to the same receiver.

Prosody 0.12 sends TLS 1.3 session tickets but resumes none with its default TLS options
(``no_ticket``): a resumed handshake is not a lever against it.

Rows are measured interleaved, ``--repeat`` times each, so the machine's drift spreads
over all of them. Run on demand only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import socket
import ssl
import statistics
import time
from dataclasses import dataclass, field

import uvloop

from bench import procstat
from bench.counter import BodyCounter, register_accounts
from bench.options import default_reference
from xmpp_post.lab.prosody import ProsodyServer

STEPS = ("tls", "stream", "sasl", "bind", "sm", "message", "pipelined", "baseline")
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
HEADER = ("<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' "
          "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
BIND = ("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        "<resource>steps</resource></bind></iq>")
ENABLE = "<enable xmlns='urn:xmpp:sm:3'/>"
RECEIVER = "rcv"


@dataclass(frozen=True)
class Figures:
    prosody_ms: float  # Prosody's CPU per login
    client_ms: float  # this (raw) client's CPU per login
    per_s: float  # logins per second
    median_ms: float  # a login's median duration


@dataclass
class Account:
    user: str
    password: str
    salted: dict[tuple[bytes, int], bytes] = field(default_factory=dict)


def quick_ack(writer: asyncio.StreamWriter) -> None:
    """Acknowledge what the server sent at once, as the gateway does (``xmpp.client``):
    without it, Prosody's writes wait for our delayed ACKs, ~40 ms a login, which also
    costs Prosody CPU (its login cost here is then ~1.5 ms higher)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


class Login:
    """One raw login, up to a step."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 domain: str) -> None:
        self.reader, self.domain = reader, domain
        self.writer = writer
        self.buffer = b""

    def write(self, data: bytes) -> None:
        self.writer.write(data)
        quick_ack(self.writer)

    async def until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            quick_ack(self.writer)
            chunk = await self.reader.read(65536)
            if not chunk:
                raise RuntimeError(f"closed while waiting for {marker!r}: {self.buffer!r}")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(marker)
        return head + marker

    async def scram(self, account: Account, with_header: bool) -> None:
        nonce = base64.b64encode(os.urandom(18)).decode()
        bare = f"n={account.user},r={nonce}"
        auth = (f"<auth xmlns='{SASL_NS}' mechanism='SCRAM-SHA-1'>"
                f"{base64.b64encode(('n,,' + bare).encode()).decode()}</auth>")
        header = HEADER.format(domain=self.domain) if with_header else ""
        self.write((header + auth).encode())
        if with_header:
            await self.until(b"</stream:features>")
        text = await self.until(b"</challenge>")
        first = base64.b64decode(text[text.rindex(b">", 0, len(text) - 12) + 1:-12])
        fields = dict(item.split(b"=", 1) for item in first.split(b","))
        salt, rounds = base64.b64decode(fields[b"s"]), int(fields[b"i"])
        salted = account.salted.get((salt, rounds))
        if salted is None:
            salted = hashlib.pbkdf2_hmac("sha1", account.password.encode(), salt, rounds)
            account.salted[(salt, rounds)] = salted
        without = b"c=biws,r=" + fields[b"r"]
        message = bare.encode() + b"," + first + b"," + without
        client_key = hmac.digest(salted, b"Client Key", "sha1")
        signature = hmac.digest(hashlib.sha1(client_key).digest(), message, "sha1")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        final = without + b",p=" + base64.b64encode(proof)
        self.write(f"<response xmlns='{SASL_NS}'>".encode()
                          + base64.b64encode(final) + b"</response>")

    async def run(self, account: Account, step: str) -> None:
        if step == "tls":
            return
        header = HEADER.format(domain=self.domain).encode()
        message = (f"<message to='{RECEIVER}@{self.domain}' type='chat'><body>steps</body>"
                   "</message><r xmlns='urn:xmpp:sm:3'/>").encode()
        if step == "pipelined":
            await self.scram(account, with_header=True)
            await self.until(b"</success>")
            self.write(header + BIND.encode() + ENABLE.encode())
            await self.until(b"<enabled")
            self.write(message)
            await self.until(b"<a ")
            return
        self.write(header)
        await self.until(b"</stream:features>")
        if step == "stream":
            return
        await self.scram(account, with_header=False)
        await self.until(b"</success>")
        if step == "sasl":
            return
        self.write(header)
        await self.until(b"</stream:features>")
        self.write(BIND.encode())
        await self.until(b"</iq>")
        if step == "bind":
            return
        self.write(ENABLE.encode())
        await self.until(b"<enabled")
        if step == "sm":
            return
        self.write(message)
        await self.until(b"<a ")


async def baseline_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           domain: str, account: Account) -> None:
    """One request to the in-server baseline on a keep-alive connection."""
    token = base64.b64encode(f"{account.user}@{domain}:{account.password}".encode())
    body = b"steps"
    writer.write(b"POST /msg_ref/" + f"{RECEIVER}@{domain}".encode() + b" HTTP/1.1\r\n"
                 b"Host: " + domain.encode() + b"\r\nAuthorization: Basic " + token
                 + b"\r\nContent-Type: text/plain\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 201"):
        raise RuntimeError(f"the baseline answered {head[:40]!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)


class Rounds:
    def __init__(self, server: ProsodyServer, accounts: list[Account],
                 concurrency: int) -> None:
        self.server, self.accounts, self.concurrency = server, accounts, concurrency
        assert server._proc is not None
        self.prosody = procstat.descendant_named(server._proc.pid, "lua")
        self.tls = ssl.create_default_context(cafile=str(server.cert_file))
        self.mine = 0.0

    async def round(self, step: str) -> Figures:
        """One round of ``step``: every account logged in, ``concurrency`` at a time."""
        if step == "baseline":
            return await self.baseline()
        slots = asyncio.Semaphore(self.concurrency)
        opened: list[asyncio.StreamWriter] = []
        times: list[float] = []

        async def one(account: Account) -> None:
            async with slots:
                started = time.perf_counter()
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.server.direct_tls_port, ssl=self.tls,
                    server_hostname=self.server.domain)
                await Login(reader, writer, self.server.domain).run(account, step)
                times.append(time.perf_counter() - started)
                opened.append(writer)

        await self.quiet()
        before, wall = procstat.cpu_seconds(self.prosody), time.perf_counter()
        self.mine = time.process_time()
        await asyncio.gather(*(one(a) for a in self.accounts))
        figures = self.figures(before, wall, times)
        for writer in opened:
            writer.write(b"</stream:stream>")
            writer.close()
        return figures

    async def baseline(self) -> Figures:
        todo = list(self.accounts)
        times: list[float] = []

        async def worker() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1",
                                                           self.server.http_port)
            while todo:
                started = time.perf_counter()
                await baseline_request(reader, writer, self.server.domain, todo.pop())
                times.append(time.perf_counter() - started)
            writer.close()

        await self.quiet()
        before, wall = procstat.cpu_seconds(self.prosody), time.perf_counter()
        self.mine = time.process_time()
        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return self.figures(before, wall, times)

    def figures(self, before: float, wall: float, times: list[float]) -> Figures:
        wall = time.perf_counter() - wall
        cost = (procstat.cpu_seconds(self.prosody) - before) / len(times) * 1000
        own = (time.process_time() - self.mine) / len(times) * 1000
        return Figures(cost, own, len(times) / wall, statistics.median(times) * 1000)

    async def quiet(self) -> None:
        """Wait until Prosody used no CPU for a while (it has finished closing)."""
        last = procstat.cpu_seconds(self.prosody)
        while True:
            await asyncio.sleep(0.3)
            now = procstat.cpu_seconds(self.prosody)
            if now - last < 0.005:
                return
            last = now


async def measure(server: ProsodyServer,
                  args: argparse.Namespace) -> dict[str, list[Figures]]:
    accounts = [Account(f"steps{n}", "steps") for n in range(args.logins)]
    await register_accounts(server.c2s_port, server.domain, server.cert_file,
                            [(a.user, a.password) for a in accounts] + [(RECEIVER, RECEIVER)])
    rounds = Rounds(server, accounts, args.concurrency)
    receiver = BodyCounter(RECEIVER, server.domain, RECEIVER, server.c2s_port,
                           server.cert_file)
    await receiver.start()
    await rounds.round("message")  # unmeasured: every SaltedPassword computed, caches warm
    costs: dict[str, list[Figures]] = {step: [] for step in args.steps}
    for _ in range(args.repeat):
        for step in args.steps:
            costs[step].append(await rounds.round(step))
    await receiver.stop()
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=lambda text: text.split(","), default=list(STEPS),
                        help=f"which rows, comma-separated (default {','.join(STEPS)})")
    args = parser.parse_args()
    reference = default_reference()
    server = ProsodyServer(muc=False, direct_tls=True, registration=True,
                           plugin_paths=[str(reference)],
                           extra_modules=["http_msg_reference"])
    server.start()
    try:
        costs = uvloop.run(measure(server, args))
    finally:
        server.close()
    print("| step | Prosody CPU ms per login | raw client's CPU ms | logins/s | median ms |")
    print("|---|---|---|---|---|")
    for step, rows in costs.items():
        cells = [_spread([getattr(r, name) for r in rows], spec)
                 for name, spec in (("prosody_ms", ".2f"), ("client_ms", ".2f"),
                                    ("per_s", ".0f"),
                                    ("median_ms", ".1f"))]
        print(f"| {step} | {' | '.join(cells)} |")


def _spread(values: list[float], spec: str) -> str:
    """The median, and the range in brackets."""
    return (f"{format(statistics.median(values), spec)} ({format(min(values), spec)}-"
            f"{format(max(values), spec)})")

if __name__ == "__main__":
    main()
