"""When the gateway's TCP ACKs of the server's segments go out: while logging in, at once
(a server writing with Nagle's algorithm waits for them); in an open session, within
``ACK_DEFER`` unless a write of ours carries the ACK first."""

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


@pytest.fixture
async def parts(monkeypatch: pytest.MonkeyPatch) -> tuple[xmpp_client.Client, Recorder, Transport]:
    """A client with a recording socket and transport; slixmpp's XML parsing is left out
    (no stream is open)."""
    monkeypatch.setattr(ClientXMPP, "data_received", lambda self, data: None)
    client = xmpp_client.Client("alice@example.org/test", "secret")
    recorder, transport = Recorder(), Transport()
    client._socket = recorder
    client.transport = transport
    client.loop = asyncio.get_running_loop()
    return client, recorder, transport


Parts = tuple[xmpp_client.Client, Recorder, Transport]


async def test_reads_while_logging_in_are_acknowledged_at_once(parts: Parts) -> None:
    client, recorder, _ = parts
    client.data_received(b"<x/>")
    assert recorder.quick_acks == 1


async def test_an_open_session_acknowledges_a_read_soon_when_it_writes_nothing(
        parts: Parts) -> None:
    client, recorder, _ = parts
    client.outbox = []
    client.data_received(b"<a/>")
    assert recorder.quick_acks == 0
    await asyncio.sleep(xmpp_client.ACK_DEFER * 5)
    assert recorder.quick_acks == 1


async def test_a_write_carries_the_ack_instead(parts: Parts) -> None:
    client, recorder, transport = parts
    client.outbox = []
    client.data_received(b"<a/>")
    client.send_raw(b"<message/>")
    client.flush()
    await asyncio.sleep(xmpp_client.ACK_DEFER * 5)
    assert transport.written == [b"<message/>"]
    assert recorder.quick_acks == 0
