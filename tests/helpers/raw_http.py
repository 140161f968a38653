"""HTTP/1.1 over a raw socket, for requests an HTTP library would tidy up (two
Authorization headers, bare line feeds, a half-close, a body that never comes)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass

from xmpp_post.service import Gateway


@dataclass
class RawReply:
    status: int
    head: str
    body: bytes

    @property
    def json(self) -> dict[str, str]:
        return json.loads(self.body)  # type: ignore[no-any-return]


def head(path: str, auth: str | None, length: int | None, *,
         content_type: str = "text/plain", extra: str = "") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: gateway", f"Content-Type: {content_type}"]
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


async def read_reply(reader: asyncio.StreamReader, timeout: float = 10) -> RawReply:
    text = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)).decode("latin-1")
    status = int(text.split(" ", 2)[1])
    length = int(re.search(r"(?im)^content-length: *(\d+)", text).group(1))  # type: ignore[union-attr]
    body = await asyncio.wait_for(reader.readexactly(length), timeout)
    return RawReply(status, text, body)


async def exchange(gateway: Gateway, data: bytes, *, half_close: bool = False,
                   timeout: float = 10) -> RawReply:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(data)
        await writer.drain()
        if half_close:
            writer.write_eof()
        return await read_reply(reader, timeout)
    finally:
        writer.transport.abort()
