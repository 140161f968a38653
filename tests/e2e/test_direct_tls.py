"""Direct TLS (XEP-0368): the gateway speaks TLS from the first byte when told to."""

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
def tls_prosody() -> Iterator[ProsodyServer]:
    server = ProsodyServer(muc=False, direct_tls=True)
    server.start()
    server.register("alice", PASSWORD)
    server.register("bob", PASSWORD)
    yield server
    server.close()


async def test_messages_go_over_direct_tls(tls_prosody: ProsodyServer, http: Client) -> None:
    config = gateway_config(tls_prosody, direct_tls="true",
                            xmpp_server=f"127.0.0.1:{tls_prosody.direct_tls_port}")
    gateway = Gateway(config)
    await gateway.start()
    bob = Receiver("bob@localhost", PASSWORD, tls_prosody.c2s_port, tls_prosody.cert_file)
    await bob.start()
    try:
        replies = await asyncio.gather(*(
            http.post(gateway, "/msg/bob", f"direct {i}", user="alice@localhost",
                      password=PASSWORD) for i in range(20)))
        assert [r.status for r in replies] == [201] * 20
        pool = gateway.pool
        session = await pool.session_for(Sender("alice@localhost", PASSWORD))
        assert isinstance(session, XmppSession)
        assert session.uses_stream_management and session.encrypted
        got = await bob.collect(20)
        assert sorted(m.body for m in got) == sorted(f"direct {i}" for i in range(20))
    finally:
        await bob.stop()
        await gateway.stop()
