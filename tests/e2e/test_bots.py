"""Bots end to end (issue 25): the real Prosody, a real webhook started by the test
(``tests.helpers.bot_endpoint``, which checks every signature with its own Standard
Webhooks verifier), real clients. A reply in a chat and in a room; the endpoint down
for a while, then back (every message delivered once, in order); the gateway SIGKILLed
with deliveries waiting, then started again (none lost)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web
from slixmpp.xmlstream import ET

from tests.helpers import (
    PASSWORD,
    AccountFactory,
    Client,
    GatewayFactory,
    ReceiverFactory,
    basic,
    gateway_config,
    serial,
)
from tests.helpers.bot_endpoint import Delivery, Endpoint, bot_config, new_secret, plain
from tests.helpers.cluster import secret_file
from tests.helpers.faults import ServerFactory
from xmpp_post.lab.instances import PACKAGE_ROOT, GatewayProcess
from xmpp_post.lab.prosody import ProsodyServer, _accepts, free_port
from xmpp_post.lab.receiver import Receiver
from xmpp_post.lab.redis_server import RedisServer
from xmpp_post.service import Gateway


async def started_endpoint(**kwargs: object) -> Endpoint:
    return await Endpoint(new_secret(), **kwargs).start()  # type: ignore[arg-type]


async def bot_gateway(start_gateway: GatewayFactory, tmp_path: Path, jid: str,
                      password: str, endpoint: Endpoint, **bot: object) -> Gateway:
    path = bot_config(tmp_path, jid, password, endpoint.url, endpoint.secret, **bot)
    gateway = await start_gateway(config_file=path, state_dir=str(tmp_path / "state"))
    await gateway.bots.online("b")
    return gateway


async def test_a_chat_message_is_posted_signed_and_the_answer_is_the_reply(
        http: Client, start_gateway: GatewayFactory, account: AccountFactory,
        receiver: ReceiverFactory, tmp_path: Path) -> None:
    bot, alice = account("bot"), account("alice")
    endpoint = await started_endpoint(answer=lambda d: web.Response(
        text=f"pong: {d.json['body']}", content_type="text/plain"))
    try:
        gateway = await bot_gateway(start_gateway, tmp_path, bot.jid, bot.password,
                                    endpoint)
        client = await receiver(alice)
        client.send(bot.jid, "ping <&> é")
        reply = await client.next(timeout=20)
        assert reply.body == "pong: ping <&> é"
        assert reply.sender.startswith(bot.jid + "/")
        [delivery] = endpoint.delivered
        assert delivery.verified
        assert delivery.headers["user-agent"].startswith("xmpp-post/")
        assert delivery.id.startswith("msg_")
        message = delivery.json
        assert message["from"] == f"{alice.jid}/receiver"
        assert message["to"].startswith(bot.jid)
        assert (message["type"], message["body"], message["room"]) == ("chat", "ping <&> é",
                                                                       None)
        assert message["id"]
        metrics = (await http.request("GET", gateway.url + "/metrics")).text
        assert 'xmpp_post_bot_deliveries_total{bot="b",outcome="delivered"} 1.0' in metrics
        assert 'xmpp_post_bot_queue_length{bot="b"} 0.0' in metrics
    finally:
        await endpoint.stop()


async def test_in_a_room_a_mention_is_posted_and_answered_as_a_reply_to_it(
        prosody: ProsodyServer, start_gateway: GatewayFactory, account: AccountFactory,
        receiver: ReceiverFactory, tmp_path: Path) -> None:
    bot, alice = account("bot"), account("alice")
    owner = await receiver(account("owner"))
    room = f"botroom{next(serial)}@{prosody.muc_domain}"
    await owner.create_room(room, "owner")
    endpoint = await started_endpoint(
        answer=lambda d: web.json_response({"body": "on it", "thread": "t1"}))
    try:
        gateway = await bot_gateway(start_gateway, tmp_path, bot.jid, bot.password,
                                    endpoint, rooms=[room], nick="helper")
        await asyncio.wait_for(gateway.bots.sessions["b"].joined(room), 20)
        speaker = await receiver(alice)
        await speaker.join_room(room, "alice")
        speaker.send(room, "nothing for the bot here", "groupchat")
        speaker.send(room, "Helper: the disk is full", "groupchat")
        delivered = await endpoint.wait_delivered(1)
        message = delivered[0].json
        assert (message["body"], message["room"], message["nick"]) == (
            "Helper: the disk is full", room, "alice")
        assert message["type"] == "groupchat"
        while True:  # the room's own traffic first: our two messages, reflected
            answer = await speaker.next(timeout=20)
            if answer.sender == f"{room}/helper":
                break
        assert answer.body == "on it" and answer.thread == "t1"
        assert "urn:xmpp:reply:0" in answer.xml and message["id"] in answer.xml
        assert len(endpoint.tries) == 1  # the message that did not name the nick stayed
    finally:
        await endpoint.stop()


async def test_while_the_endpoint_is_down_messages_wait_then_arrive_once_in_order(
        start_gateway: GatewayFactory, account: AccountFactory, receiver: ReceiverFactory,
        tmp_path: Path) -> None:
    bot, alice = account("bot"), account("alice")
    down = True

    def answer(_d: Delivery) -> web.Response:
        if down:
            return web.Response(status=503, headers={"Retry-After": "1"})
        return web.Response(status=204)

    endpoint = await started_endpoint(answer=answer)
    try:
        await bot_gateway(start_gateway, tmp_path, bot.jid, bot.password, endpoint)
        client = await receiver(alice)
        bodies = [f"message {n}" for n in range(6)]
        for body in bodies:
            client.send(bot.jid, body)
        await endpoint.wait_tries(3)  # the first message, tried again and again
        assert {d.json["body"] for d in endpoint.tries} == {"message 0"}
        assert len({d.id for d in endpoint.tries}) == 1  # one webhook-id on every try
        down = False
        delivered = await endpoint.wait_delivered(6)
        assert [d.json["body"] for d in delivered] == bodies
        assert all(d.verified for d in endpoint.tries)
        assert client.pending() == []  # 204: no replies
    finally:
        await endpoint.stop()


async def test_a_sigkilled_gateway_loses_no_waiting_delivery(
        prosody: ProsodyServer, account: AccountFactory, receiver: ReceiverFactory,
        tmp_path: Path) -> None:
    bot, alice = account("bot"), account("alice")
    down = True

    def answer(_d: Delivery) -> web.Response:
        return web.Response(status=500) if down else plain("ok")(_d)

    endpoint = await started_endpoint(answer=answer)
    path = bot_config(tmp_path, bot.jid, bot.password, endpoint.url, endpoint.secret)
    args = ["--domain", prosody.domain, "--xmpp-server", f"127.0.0.1:{prosody.c2s_port}",
            "--ca-file", str(prosody.cert_file), "--state-dir", str(tmp_path / "state"),
            "--config", str(path)]
    first = GatewayProcess(args, tmp_path / "first.log")
    await asyncio.to_thread(first.start)
    client = await receiver(alice)
    try:
        for n in range(3):
            client.send(bot.jid, f"before {n}")
        await endpoint.wait_tries(2)  # queued, the first tried: the others wait
        first.signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait)
        for n in range(2):  # to the server's offline store
            client.send(bot.jid, f"while down {n}")
        down = False
        second = GatewayProcess(args, tmp_path / "second.log")
        await asyncio.to_thread(second.start)
        try:
            delivered = await endpoint.wait_delivered(5)
            assert [d.json["body"] for d in delivered] == [
                "before 0", "before 1", "before 2", "while down 0", "while down 1"]
            replies = [(await client.next(timeout=20)).body for _ in range(5)]
            assert replies == ["ok"] * 5
        finally:
            second.stop()
    finally:
        first.terminate()
        await endpoint.stop()


@pytest.mark.parametrize("offline", [False, True], ids=["archive-only", "archive-and-offline"])
async def test_messages_sent_while_the_bot_was_away_come_from_the_archive_once(
        own_prosody: ServerFactory, tmp_path: Path, offline: bool) -> None:
    disabled = [] if offline else ['modules_disabled = { "offline" }']
    server = own_prosody(extra_modules=["mam"], extra_config=[
        'archive_expires_after = "1d"', "default_archive_policy = true", *disabled])
    bot = server.register("bot", PASSWORD)
    alice = server.register("alice", PASSWORD)
    endpoint = await started_endpoint()
    path = bot_config(tmp_path, bot, PASSWORD, endpoint.url, endpoint.secret)
    client = Receiver(alice, PASSWORD, server.c2s_port, server.cert_file)
    await client.start()
    try:
        for run in (0, 1):  # the second run: anything queued twice comes before "fourth"
            gateway = Gateway(gateway_config(server, path, state_dir=str(tmp_path / "s")))
            await gateway.start()
            try:
                await gateway.bots.online("b")
                if run == 0:
                    client.send(bot, "first")
                await endpoint.wait_delivered(1 + 2 * run)
                if run == 1:
                    client.send(bot, "fourth")
                    await endpoint.wait_delivered(4)
            finally:
                await gateway.stop()
            if run == 0:  # the bot is away: these wait in the archive
                for body in ("second", "third"):
                    client.send(bot, body)
                await client.sync()  # the server has archived them
        delivered = [d.json["body"] for d in endpoint.delivered]
        assert delivered == ["first", "second", "third", "fourth"]
    finally:
        await client.stop()
        await endpoint.stop()


async def test_with_redis_a_bot_runs_on_one_instance_and_another_takes_it_over(
        prosody: ProsodyServer, account: AccountFactory, receiver: ReceiverFactory,
        redis_server: RedisServer, tmp_path: Path) -> None:
    bot, alice = account("bot"), account("alice")
    endpoint = await started_endpoint(answer=plain("ok"))
    path = bot_config(tmp_path, bot.jid, bot.password, endpoint.url, endpoint.secret)
    secret = secret_file(tmp_path)
    gateways = [Gateway(gateway_config(prosody, path, redis_url=redis_server.url,
                                       state_secret_file=str(secret),
                                       state_dir=str(tmp_path / f"state{n}")))
                for n in range(2)]
    client = await receiver(alice)
    try:
        for gateway in gateways:
            await gateway.start()
        waits = {asyncio.ensure_future(g.bots.online("b")): g for g in gateways}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        holder = waits[done.pop()]
        other = gateways[1 - gateways.index(holder)]
        client.send(bot.jid, "one")
        assert (await client.next(timeout=20)).body == "ok"
        assert "b" not in other.bots.sessions  # one instance at a time
        started = time.monotonic()
        await holder.stop()  # gives the lease up
        await other.bots.online("b", timeout=15)
        took = time.monotonic() - started
        client.send(bot.jid, "two")
        assert (await client.next(timeout=20)).body == "ok"
        assert [d.json["body"] for d in endpoint.delivered] == ["one", "two"]
        assert took < 10, took
    finally:
        for gateway in gateways:
            await gateway.stop()
        await endpoint.stop()


async def test_the_bot_comes_back_and_rejoins_its_rooms_after_a_server_restart(
        own_prosody: ServerFactory, tmp_path: Path) -> None:
    server = own_prosody()
    bot = server.register("bot", PASSWORD)
    server.register("owner", PASSWORD)
    room = f"restart{next(serial)}@{server.muc_domain}"
    owner = Receiver(f"owner@{server.domain}", PASSWORD, server.c2s_port, server.cert_file)
    await owner.start()
    await owner.create_room(room, "owner")  # persistent: it outlives the restart
    await owner.stop()
    endpoint = await started_endpoint(answer=plain("back"))
    path = bot_config(tmp_path, bot, PASSWORD, endpoint.url, endpoint.secret, rooms=[room],
                      mentions_only=False)
    gateway = Gateway(gateway_config(server, path, state_dir=str(tmp_path / "state")))
    await gateway.start()
    try:
        session = await gateway.bots.online("b")
        await asyncio.wait_for(session.joined(room), 20)
        await asyncio.to_thread(server.stop)
        await asyncio.wait_for(session.offline.wait(), 20)
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(session.joined(room), 60)
        assert session.connections == 2
        speaker = Receiver(f"owner@{server.domain}", PASSWORD, server.c2s_port,
                           server.cert_file)
        await speaker.start()
        try:
            await speaker.join_room(room, "owner")
            speaker.send(room, "anyone there?", "groupchat")
            [delivery] = await endpoint.wait_delivered(1)
            assert delivery.json["body"] == "anyone there?"
        finally:
            await speaker.stop()
    finally:
        await gateway.stop()
        await endpoint.stop()


async def test_the_twenty_line_bot_of_the_docs_answers(
        start_gateway: GatewayFactory, account: AccountFactory, receiver: ReceiverFactory,
        tmp_path: Path) -> None:
    page = (PACKAGE_ROOT / "docs" / "bots.md").read_text()
    code = page.split("## A bot in twenty lines of Python")[1].split("```python\n")[1]
    code = code.split("```")[0]
    assert len(code.strip().splitlines()) <= 22
    (tmp_path / "bot.py").write_text(code)
    secret, port = new_secret(), free_port()
    process = subprocess.Popen([sys.executable, str(tmp_path / "bot.py")],
                               env={**os.environ, "BOT_SECRET": secret, "PORT": str(port)})
    try:
        await asyncio.to_thread(wait_accepting, port)
        endpoint = Endpoint(secret, port=port)  # not started: its URL and secret only
        bot, alice = account("bot"), account("alice")
        await bot_gateway(start_gateway, tmp_path, bot.jid, bot.password, endpoint)
        client = await receiver(alice)
        client.send(bot.jid, "hi")
        assert (await client.next(timeout=20)).body == f"{alice.jid}/receiver said: hi"
    finally:
        process.terminate()
        process.wait(10)


def wait_accepting(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not _accepts(port):
        assert time.monotonic() < deadline, "the docs' bot did not start"
        time.sleep(0.05)


async def test_a_reply_to_the_full_jid_of_a_sending_session_reaches_the_bot(
        own_prosody: ServerFactory, http: Client, tmp_path: Path) -> None:
    """The gateway sends as the bot's account from sessions of its own (an alert, say);
    a client may reply to that session's full JID: a carbon copy brings it to the bot."""
    server = own_prosody(extra_modules=["carbons"])
    bot = server.register("bot", PASSWORD)
    alice = server.register("alice", PASSWORD)
    endpoint = await started_endpoint()
    path = bot_config(tmp_path, bot, PASSWORD, endpoint.url, endpoint.secret)
    gateway = Gateway(gateway_config(server, path, state_dir=str(tmp_path / "state")))
    await gateway.start()
    client = Receiver(alice, PASSWORD, server.c2s_port, server.cert_file)
    await client.start()
    try:
        await gateway.bots.online("b")
        sent = await http.request("POST", f"{gateway.url}/msg/alice", data="disk full",
                                  headers={"Authorization": basic(bot, PASSWORD),
                                           "Content-Type": "text/plain"})
        assert sent.status == 201, sent.text
        alert = await client.next(timeout=20)
        assert alert.sender.startswith(bot + "/xmpp-post.")  # the sending session
        client.send(alert.sender, "ack")
        [delivery] = await endpoint.wait_delivered(1)
        assert delivery.json["body"] == "ack"
    finally:
        await client.stop()
        await gateway.stop()
        await endpoint.stop()


async def test_an_encrypted_message_is_skipped_and_counted(
        http: Client, start_gateway: GatewayFactory, account: AccountFactory,
        receiver: ReceiverFactory, tmp_path: Path) -> None:
    bot, alice = account("bot"), account("alice")
    endpoint = await started_endpoint()
    try:
        gateway = await bot_gateway(start_gateway, tmp_path, bot.jid, bot.password,
                                    endpoint)
        client = await receiver(alice)
        client.send(bot.jid, "I sent you an OMEMO encrypted message",
                    extra=ET.Element("{eu.siacs.conversations.axolotl}encrypted"))
        client.send(bot.jid, "in clear")
        [delivery] = await endpoint.wait_delivered(1)
        assert delivery.json["body"] == "in clear"  # the first one was skipped
        metrics = (await http.request("GET", gateway.url + "/metrics")).text
        assert 'xmpp_post_bot_skipped_total{bot="b",reason="encrypted"} 1.0' in metrics
    finally:
        await endpoint.stop()


async def test_when_the_instance_holding_a_bot_is_killed_another_takes_it_over(
        prosody: ProsodyServer, account: AccountFactory, receiver: ReceiverFactory,
        redis_server: RedisServer, tmp_path: Path) -> None:
    bot, alice = account("bot"), account("alice")
    endpoint = await started_endpoint(answer=plain("ok"))
    path = bot_config(tmp_path, bot.jid, bot.password, endpoint.url, endpoint.secret)
    secret = secret_file(tmp_path)

    def instance(n: int) -> GatewayProcess:
        return GatewayProcess([
            "--domain", prosody.domain, "--xmpp-server", f"127.0.0.1:{prosody.c2s_port}",
            "--ca-file", str(prosody.cert_file), "--state-dir", str(tmp_path / f"s{n}"),
            "--config", str(path), "--redis-url", redis_server.url,
            "--state-secret-file", str(secret)], tmp_path / f"{n}.log")

    first, second = instance(1), instance(2)
    client = await receiver(alice)
    try:
        await asyncio.to_thread(first.start)
        client.send(bot.jid, "one")
        assert (await client.next(timeout=20)).body == "ok"  # the first holds the lease
        await asyncio.to_thread(second.start)
        first.signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait)
        started = time.monotonic()
        client.send(bot.jid, "two")  # offline store until the second takes over
        assert (await client.next(timeout=30)).body == "ok"
        assert time.monotonic() - started < 20
        assert [d.json["body"] for d in endpoint.delivered] == ["one", "two"]
    finally:
        first.terminate()
        second.stop()
        await endpoint.stop()
