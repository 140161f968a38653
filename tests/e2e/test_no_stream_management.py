"""Against a server without stream management, 201 is proven by a ping round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.helpers import PASSWORD, Client, gateway_config
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.model import Sender
from xmpp_post.service import Gateway
from xmpp_post.xmpp.session import XmppSession


@pytest.fixture(scope="module")
def plain_prosody() -> Iterator[ProsodyServer]:
    server = ProsodyServer(smacks=False, muc=False)
    server.start()
    server.register("alice", PASSWORD)
    server.register("bob", PASSWORD)
    yield server
    server.close()


async def test_messages_are_confirmed_by_ping_and_delivered(
        plain_prosody: ProsodyServer, http: Client) -> None:
    gateway = Gateway(gateway_config(plain_prosody))
    await gateway.start()
    bob = Receiver("bob@localhost", PASSWORD, plain_prosody.c2s_port, plain_prosody.cert_file)
    await bob.start()
    try:
        replies = await asyncio.gather(*(
            http.post(gateway, "/msg/bob", f"ping-proven {i}", user="alice@localhost",
                      password=PASSWORD) for i in range(50)))
        assert [r.status for r in replies] == [201] * 50
        pool = gateway.pool
        session = await pool.session_for(Sender("alice@localhost", PASSWORD))
        assert isinstance(session, XmppSession)
        assert session.uses_stream_management is False
        got = await bob.collect(50)
        assert sorted(m.body for m in got) == sorted(f"ping-proven {i}" for i in range(50))
    finally:
        await bob.stop()
        await gateway.stop()


async def test_a_refusal_is_seen_before_the_ping_answer(
        plain_prosody: ProsodyServer, http: Client) -> None:
    gateway = Gateway(gateway_config(plain_prosody))
    await gateway.start()
    try:
        replies = await asyncio.gather(*(
            http.post(gateway, path, "x", user="alice@localhost", password=PASSWORD)
            for path in ("/msg/bob", "/msg/nobody", "/msg/bob")))
        assert [r.status for r in replies] == [201, 404, 201]
        assert replies[1].json["error"] == "recipient_unavailable"
    finally:
        await gateway.stop()
