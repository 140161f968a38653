"""When the gateway's TCP ACKs go out (servers that write with Nagle's algorithm wait for
them): after every read, and after every write of ours while logging in and closing,
whose next ACK Linux would otherwise delay; not after each write of an open session's
outbox, whose reads are acknowledged anyway."""

from __future__ import annotations

import asyncio
import socket

import pytest
from slixmpp import ClientXMPP

from xmpp_post.xmpp import client as xmpp_client


class Recorder:
    def __init__(self) -> None:
        self.quick_acks = 0

    def setsockopt(self, level: int, option: int, value: int) -> None:
        if option == getattr(socket, "TCP_QUICKACK", None):
            self.quick_acks += 1


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


Parts = tuple[xmpp_client.Client, Recorder, Transport]


@pytest.fixture
async def parts(monkeypatch: pytest.MonkeyPatch) -> Parts:
    """A client with a recording socket and transport; slixmpp's own reading and writing
    are left out (no stream is open)."""
    monkeypatch.setattr(ClientXMPP, "data_received", lambda self, data: None)
    monkeypatch.setattr(ClientXMPP, "send_raw",
                        lambda self, data: self.transport.write(data))
    client = xmpp_client.Client("alice@example.org/test", "secret")
    recorder, transport = Recorder(), Transport()
    client._socket = recorder
    client.transport = transport
    client.loop = asyncio.get_running_loop()
    return client, recorder, transport


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="Linux only")
async def test_every_read_is_acknowledged_at_once(parts: Parts) -> None:
    client, recorder, _ = parts
    client.data_received(b"<x/>")
    client.outbox = []  # the session is open
    client.data_received(b"<a/>")
    assert recorder.quick_acks == 2


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="Linux only")
async def test_each_write_while_logging_in_is_followed_by_an_ack(parts: Parts) -> None:
    client, recorder, transport = parts
    client.send_raw(b"<stream:stream>")
    client.send_raw(b"<auth/>")
    assert transport.written == [b"<stream:stream>", b"<auth/>"]
    assert recorder.quick_acks == 2


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="Linux only")
async def test_an_open_sessions_writes_add_no_ack(parts: Parts) -> None:
    client, recorder, transport = parts
    client.outbox = []
    client.send_raw(b"<message/>")
    client.flush()
    assert transport.written == [b"<message/>"]
    assert recorder.quick_acks == 0
