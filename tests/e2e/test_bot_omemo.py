"""A bot with OMEMO on (issues 25 and 24, docs/bots.md): an OMEMO client in a process of
its own (``tests/helpers/omemo_receiver.py``, slixmpp-omemo, not the gateway's code)
sends the bot an encrypted message; the test's webhook gets it decrypted; the reply
comes back encrypted and decrypts at the client; Prosody's data files never hold the
text of either. A message the bot cannot decrypt is skipped and counted."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from slixmpp.xmlstream import ET

from tests.helpers import PASSWORD, Client, gateway_config
from tests.helpers.bot_endpoint import Endpoint, bot_config, new_secret
from tests.helpers.omemo import OLDMEMO, TWOMEMO, OmemoPeer, stored_bytes, user
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.service import Gateway
from xmpp_post.xmpp import omemo_backends

BotStarter = Callable[..., Awaitable[tuple[Gateway, Endpoint]]]


@pytest.fixture
async def omemo_bot(pep_prosody: ProsodyServer,
                    tmp_path: Path) -> AsyncIterator[BotStarter]:
    """``await omemo_bot(jid, encrypt)``: a gateway with the bot ``b`` on ``jid`` (its
    account's ``encrypt``), a state directory and secret, and its webhook, which
    answers ``pong: <body>``."""
    running: list[tuple[Gateway, Endpoint]] = []
    secret = tmp_path / "state.secret"
    secret.write_text(secrets.token_urlsafe(48))
    os.chmod(secret, 0o600)

    async def start(jid: str, encrypt: str = "omemo", endpoint: Endpoint | None = None,
                    **bot: Any) -> tuple[Gateway, Endpoint]:
        if endpoint is None:
            endpoint = await Endpoint(new_secret(), answer=lambda d: web.Response(
                text=f"pong: {d.json['body']}", content_type="text/plain")).start()
        path = bot_config(tmp_path, jid, PASSWORD, endpoint.url, endpoint.secret,
                          account_encrypt=encrypt, **bot)
        gateway = Gateway(gateway_config(pep_prosody, config_file=path,
                                         state_dir=str(tmp_path / "state"),
                                         state_secret_file=str(secret)))
        running.append((gateway, endpoint))
        await gateway.start()
        await gateway.bots.online("b")
        return gateway, endpoint

    yield start
    for gateway, endpoint in running:
        await gateway.stop()
        await endpoint.stop()


@pytest.fixture
async def peer(pep_prosody: ProsodyServer,
               tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[OmemoPeer]]]:
    made: list[OmemoPeer] = []

    async def start(jid: str, *options: str) -> OmemoPeer:
        client = OmemoPeer(pep_prosody, jid, PASSWORD, tmp_path / f"{jid}.json", *options)
        made.append(client)
        return await client.start()

    yield start
    for client in made:
        await client.stop()


@pytest.mark.parametrize("version", ["2", pytest.param("0.3", marks=pytest.mark.skipif(
    not omemo_backends.has_0_3(), reason="OMEMO 0.3 needs the extra oldmemo"))])
async def test_an_encrypted_message_is_delivered_decrypted_and_the_reply_is_encrypted(
        pep_prosody: ProsodyServer, http: Client, omemo_bot: BotStarter,
        peer: Callable[..., Awaitable[OmemoPeer]], version: str) -> None:
    bot, alice = user(pep_prosody, "bot"), user(pep_prosody, "alice")
    gateway, endpoint = await omemo_bot(bot)
    client = await peer(alice)
    text = f"disk full on db{secrets.token_hex(6)}"
    sent = await client.send(bot, text, version)
    assert sent["namespaces"] == [TWOMEMO if version == "2" else OLDMEMO]
    [delivery] = await endpoint.wait_delivered(1)
    assert delivery.verified
    message = delivery.json
    assert (message["body"], message["encrypted"], message["type"]) == (text, True, "chat")
    assert message["from"].startswith(alice + "/")
    got = await client.message()
    assert got["sender"] == bot and got["body"] == f"pong: {text}"
    assert got["namespace"] == TWOMEMO  # the client has both: the newer
    assert text not in (got["clear"] or "")
    stored = stored_bytes(pep_prosody)  # mod_mam archived both messages: encrypted
    assert text.split()[-1].encode() not in stored
    assert TWOMEMO.encode() in stored
    metrics = (await http.request("GET", gateway.url + "/metrics")).text
    assert 'xmpp_post_bot_deliveries_total{bot="b",outcome="delivered"} 1.0' in metrics


async def test_a_waiting_decrypted_message_is_sealed_in_the_state_directory(
        pep_prosody: ProsodyServer, omemo_bot: BotStarter, tmp_path: Path,
        peer: Callable[..., Awaitable[OmemoPeer]]) -> None:
    """While the endpoint is down, the decrypted text waits in the bot's queue: sealed
    under state_secret_file, so the state directory's files never hold it."""
    bot, alice = user(pep_prosody, "bot"), user(pep_prosody, "alice")
    down = True

    def answer(_d: Any) -> web.Response:
        return web.Response(status=503, headers={"Retry-After": "1"}) if down else (
            web.Response(status=204))

    endpoint = await Endpoint(new_secret(), answer=answer).start()
    await omemo_bot(bot, endpoint=endpoint)
    client = await peer(alice)
    token = secrets.token_hex(8)
    await client.send(bot, f"root password rotated: {token}", "2")
    await endpoint.wait_tries(2)  # tried, refused, waiting in the queue
    files = [f for f in (tmp_path / "state").rglob("*") if f.is_file()]
    assert files and not any(token.encode() in f.read_bytes() for f in files)
    down = False
    [delivery] = await endpoint.wait_delivered(1)
    assert delivery.json["body"] == f"root password rotated: {token}"


async def test_a_message_the_bot_cannot_decrypt_is_skipped_and_counted(
        pep_prosody: ProsodyServer, http: Client, omemo_bot: BotStarter) -> None:
    bot, alice = user(pep_prosody, "bot"), user(pep_prosody, "alice")
    gateway, endpoint = await omemo_bot(bot)
    client = Receiver(alice, PASSWORD, pep_prosody.c2s_port, pep_prosody.cert_file)
    await client.start()
    try:
        broken = ET.Element(f"{{{TWOMEMO}}}encrypted")  # no header, no keys: malformed
        ET.SubElement(broken, f"{{{TWOMEMO}}}payload").text = "AAAA"
        client.send(bot, "[OMEMO encrypted]", extra=broken)
        client.send(bot, "in clear")
        [delivery] = await endpoint.wait_delivered(1)
        assert delivery.json["body"] == "in clear"  # the first one was never delivered
        assert delivery.json["encrypted"] is False
        assert await client.next(timeout=20) is not None  # its reply, in clear
        metrics = (await http.request("GET", gateway.url + "/metrics")).text
        assert 'xmpp_post_bot_skipped_total{bot="b",reason="undecryptable"} 1.0' in metrics
    finally:
        await client.stop()



async def test_a_bot_with_omemo_off_skips_and_counts_encrypted_messages(
        pep_prosody: ProsodyServer, http: Client, omemo_bot: BotStarter,
        peer: Callable[..., Awaitable[OmemoPeer]]) -> None:
    bot, alice = user(pep_prosody, "bot"), user(pep_prosody, "alice")
    gateway, endpoint = await omemo_bot(bot, encrypt="none")  # keys kept, but not its
    omemo = await peer(alice)
    with pytest.raises(AssertionError, match="OMEMO client failed"):
        await omemo.send(bot, "no device of the bot to encrypt for")
    clear = Receiver(alice, PASSWORD, pep_prosody.c2s_port, pep_prosody.cert_file,
                     resource="clear")
    await clear.start()
    try:
        clear.send(bot, "[OMEMO encrypted]", extra=ET.Element(f"{{{OLDMEMO}}}encrypted"))
        clear.send(bot, "in clear")
        [delivery] = await endpoint.wait_delivered(1)
        assert delivery.json["body"] == "in clear"
        metrics = (await http.request("GET", gateway.url + "/metrics")).text
        assert 'xmpp_post_bot_skipped_total{bot="b",reason="encrypted"} 1.0' in metrics
    finally:
        await clear.stop()


async def test_sent_while_the_gateway_was_down_it_is_decrypted_once(
        pep_prosody: ProsodyServer, http: Client, omemo_bot: BotStarter,
        peer: Callable[..., Awaitable[OmemoPeer]]) -> None:
    bot, alice = user(pep_prosody, "bot"), user(pep_prosody, "alice")
    gateway, endpoint = await omemo_bot(bot)
    client = await peer(alice)
    await client.send(bot, "first")
    await endpoint.wait_delivered(1)
    assert (await client.message())["body"] == "pong: first"
    await gateway.stop()
    await client.send(bot, "while down")  # in Prosody's offline store and its archive
    gateway, _same = await omemo_bot(bot, endpoint=endpoint)
    delivered = await endpoint.wait_delivered(2)
    assert [d.json["body"] for d in delivered] == ["first", "while down"]
    assert (await client.message())["body"] == "pong: while down"
    metrics = (await http.request("GET", gateway.url + "/metrics")).text
    assert 'reason="undecryptable"' not in metrics
    assert len(endpoint.delivered) == 2


async def test_in_a_members_only_non_anonymous_room_the_reply_is_encrypted_to_members(
        pep_prosody: ProsodyServer, omemo_bot: BotStarter,
        peer: Callable[..., Awaitable[OmemoPeer]]) -> None:
    bot, alice, owner = (user(pep_prosody, name) for name in ("bot", "alice", "owner"))
    room = f"botsecret{secrets.token_hex(3)}@{pep_prosody.muc_domain}"
    async with Receiver(owner, PASSWORD, pep_prosody.c2s_port, pep_prosody.cert_file) as boss:
        await boss.create_room(room, "owner", membersonly="1", whois="anyone")
        for member in (alice, bot):
            await boss.set_affiliation(room, member, "member")
        gateway, endpoint = await omemo_bot(bot, rooms=[room], nick="helper")
        await gateway.bots.sessions["b"].joined(room)
        client = await peer(alice, "--join", room)
        text = f"helper: is db{secrets.token_hex(6)} up?"
        await client.send(room, text, readers=[bot])
        [delivery] = await endpoint.wait_delivered(1)
        message = delivery.json
        assert (message["body"], message["room"], message["encrypted"]) == (text, room, True)
        got = await client.message()
        assert got["sender"] == bot and got["body"] == f"pong: {text}"
        assert got["namespace"] == TWOMEMO and text not in (got["clear"] or "")
        assert text.split()[-2].encode() not in stored_bytes(pep_prosody)


async def test_a_reply_that_cannot_be_encrypted_is_not_sent_in_clear_but_counted(
        pep_prosody: ProsodyServer, http: Client, omemo_bot: BotStarter,
        peer: Callable[..., Awaitable[OmemoPeer]]) -> None:
    bot, alice, owner = (user(pep_prosody, name) for name in ("bot", "alice", "owner"))
    room = f"botopen{secrets.token_hex(3)}@{pep_prosody.muc_domain}"
    async with Receiver(owner, PASSWORD, pep_prosody.c2s_port, pep_prosody.cert_file) as boss:
        await boss.create_room(room, "owner", whois="anyone")  # open: not encrypted to
        gateway, endpoint = await omemo_bot(bot, rooms=[room], nick="helper")
        await gateway.bots.sessions["b"].joined(room)
        client = await peer(alice, "--join", room)
        secret = f"db{secrets.token_hex(6)}"
        await client.send(room, f"helper: {secret} is down", readers=[bot])
        [first] = await endpoint.wait_delivered(1)
        assert first.json["body"] == f"helper: {secret} is down" and first.json["encrypted"]
        async with Receiver(alice, PASSWORD, pep_prosody.c2s_port, pep_prosody.cert_file,
                            resource="clear") as clear:
            await clear.join_room(room, "alice-clear")
            clear.send(room, "helper: and now?", "groupchat")
            await endpoint.wait_delivered(2)  # the first one's reply was tried before
            while True:
                got = await client.message()
                if got["sender"] == bot:
                    break
        assert got["body"] == "pong: helper: and now?" and got["namespace"] is None
        metrics = (await http.request("GET", gateway.url + "/metrics")).text
        assert 'xmpp_post_bot_replies_failed_total{bot="b",reason="omemo"} 1.0' in metrics
        assert secret.encode() not in stored_bytes(pep_prosody)
