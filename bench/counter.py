"""A deliberately lean receiving XMPP client that counts the message bodies it gets.

The benchmark's receiver must not compete with the gateway for CPU, so instead of a full
XMPP library it speaks just enough XMPP (STARTTLS, SASL PLAIN, bind, presence) and then
scans the raw stream for ``<body>`` elements. Bodies are ``<run tag>:<thread>:<n>``, so
every delivery is counted per tag and duplicates are detected.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
from collections import Counter
from pathlib import Path

_BODY = re.compile(rb"<body>([^<]*)</body>")
_STREAM = ("<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' "
           "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")


async def _starttls(host: str, port: int, domain: str, tls: ssl.SSLContext,
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Connect, open a stream and upgrade it to TLS; return the reader, writer, features."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(_STREAM.format(domain=domain).encode())
    await _until(reader, b"", b"</stream:features>")
    writer.write(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    await _until(reader, b"", b"<proceed")
    await writer.start_tls(tls, server_hostname=domain)
    writer.write(_STREAM.format(domain=domain).encode())
    features = await _until(reader, b"", b"</stream:features>")
    return reader, writer, features


async def _until(reader: asyncio.StreamReader, buffer: bytes, marker: bytes) -> bytes:
    """Read until ``marker``; return what came before it and it."""
    while marker not in buffer:
        if b"<failure" in buffer or b"<stream:error" in buffer or b"type='error'" in buffer:
            raise RuntimeError(f"XMPP server refused: {buffer[-300:]!r}")
        chunk = await reader.read(65536)
        if not chunk:
            raise RuntimeError("the XMPP server closed the stream")
        buffer += chunk
    return buffer


async def _after(reader: asyncio.StreamReader, buffer: bytes, marker: bytes) -> bytes:
    """Read until ``marker``; return what came after it."""
    buffer = await _until(reader, buffer, marker)
    return buffer[buffer.index(marker) + len(marker):]


async def open_session(port: int, domain: str, user: str, password: str,
                       tls: ssl.SSLContext, resource: str,
                       ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Log in on 127.0.0.1 (STARTTLS, SASL PLAIN, bind); return the reader, the writer
    and whatever the server sent after the bind result."""
    reader, writer, _ = await _starttls("127.0.0.1", port, domain, tls)
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    writer.write(("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                  f"{token}</auth>").encode())
    await _after(reader, b"", b"<success")
    writer.write(_STREAM.format(domain=domain).encode())
    await _after(reader, b"", b"</stream:features>")
    writer.write(("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  f"<resource>{resource}</resource></bind></iq>").encode())
    rest = await _after(reader, b"", b"</iq>")
    return reader, writer, rest


async def register_accounts(port: int, domain: str, ca_file: Path,
                            accounts: list[tuple[str, str]], concurrency: int = 8) -> None:
    """Create accounts by in-band registration (XEP-0077; needs mod_register)."""
    tls = ssl.create_default_context(cafile=str(ca_file))
    todo = list(accounts)

    async def worker() -> None:
        while todo:
            user, password = todo.pop()
            reader, writer, _ = await _starttls("127.0.0.1", port, domain, tls)
            writer.write(("<iq type='set' id='reg1'><query xmlns='jabber:iq:register'>"
                          f"<username>{user}</username><password>{password}</password>"
                          "</query></iq>").encode())
            await _until(reader, b"", b"id='reg1'")
            writer.write(b"</stream:stream>")
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class BodyCounter:
    """``await BodyCounter(...).start()``; then ``count(tag)``, ``duplicates(tag)``."""

    def __init__(self, user: str, domain: str, password: str, port: int,
                 ca_file: Path) -> None:
        self.user, self.domain, self.password, self.port = user, domain, password, port
        self._tls = ssl.create_default_context(cafile=str(ca_file))
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._seen: set[bytes] = set()
        self._counts: Counter[str] = Counter()
        self._dupes: Counter[str] = Counter()
        self._buffer = b""

    @property
    def jid(self) -> str:
        return f"{self.user}@{self.domain}"

    def count(self, tag: str) -> int:
        return self._counts[tag]

    def duplicates(self, tag: str) -> int:
        return self._dupes[tag]

    async def start(self, within: float = 10.0) -> None:
        await asyncio.wait_for(self._login(), within)
        self._task = asyncio.ensure_future(self._read_forever())

    async def _login(self) -> None:
        self._reader, self._writer, self._buffer = await open_session(
            self.port, self.domain, self.user, self.password, self._tls, "bench-counter")
        self._writer.write(b"<presence/>")
        self._buffer = await _after(self._reader, self._buffer, b"<presence")
        self._buffer = b""

    async def _read_forever(self) -> None:
        assert self._reader is not None
        while True:
            chunk = await self._reader.read(262144)
            if not chunk:
                return
            data = self._buffer + chunk
            end = 0
            for match in _BODY.finditer(data):
                self._record(match.group(1))
                end = match.end()
            tail = data[end:]
            start = tail.rfind(b"<body>")
            self._buffer = tail[start:] if start >= 0 else tail[-8:]

    def _record(self, body: bytes) -> None:
        tag = body.split(b":", 1)[0].decode(errors="replace")
        if body in self._seen:
            self._dupes[tag] += 1
        else:
            self._seen.add(body)
            self._counts[tag] += 1

    async def wait_for(self, tag: str, expected: int, within: float = 30.0,
                       settle: float = 0.5) -> int:
        """Wait until ``expected`` bodies of ``tag`` arrived (then ``settle`` s more)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._counts[tag] < expected and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(settle)
        return self._counts[tag]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            try:
                self._writer.write(b"</stream:stream>")
                self._writer.close()
                await asyncio.wait_for(self._writer.wait_closed(), 2.0)
            except (OSError, TimeoutError, ssl.SSLError):
                pass
