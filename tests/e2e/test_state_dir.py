"""A gateway with a state directory (--state-dir), end to end against the real Prosody
and a receiving client: SIGKILL in the middle of writes, then every 201 replayed and
nothing sent twice; a second gateway on the directory refused; /metrics; no secret in
the files. The store's disk failing is in ``test_state_faults.py``."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory, basic
from xmpp_post import config
from xmpp_post.lab.instances import PACKAGE_ROOT, GatewayProcess
from xmpp_post.lab.prosody import ProsodyServer, free_port
from xmpp_post.lab.redis_server import RedisServer
from xmpp_post.service import Gateway
from xmpp_post.state.redis import RedisIdempotencyStore, RedisLoginThrottle
from xmpp_post.state.sqlite import SqliteKeyValue
from xmpp_post.testing import FakeRelay

KEY = "Idempotency-Key"


def gateway_args(prosody: ProsodyServer, state_dir: Path) -> list[str]:
    return ["--domain", prosody.domain, "--xmpp-server", f"127.0.0.1:{prosody.c2s_port}",
            "--ca-file", str(prosody.cert_file), "--state-dir", str(state_dir)]


async def test_sigkill_mid_writes_then_every_201_is_replayed_and_sent_once(
        prosody: ProsodyServer, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, tmp_path: Path) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    state_dir = tmp_path / "state"
    first = GatewayProcess(gateway_args(prosody, state_dir), tmp_path / "first.log")
    await asyncio.to_thread(first.start)
    answered: dict[str, tuple[str, dict[str, str]]] = {}  # key -> (body, the 201's JSON)
    unanswered: dict[str, str] = {}  # in flight when the gateway died
    enough = asyncio.Event()
    headers = {"Authorization": basic(alice.jid, alice.password),
               "Content-Type": "text/plain"}

    async def write(writer: int) -> None:
        for n in range(10_000):
            key, body = f"kill-{writer}-{n}", f"message {writer}.{n}"
            try:
                async with http.session.post(f"{first.url}/msg/{bob.local}", data=body,
                                             headers={**headers, KEY: key}) as reply:
                    assert reply.status == 201, await reply.text()
                    answered[key] = (body, await reply.json())
            except aiohttp.ClientError:
                unanswered[key] = body
                return
            if len(answered) >= 80:
                enough.set()

    writers = [asyncio.create_task(write(w)) for w in range(6)]
    try:
        await asyncio.wait_for(enough.wait(), 60)
        first.signal(signal.SIGKILL)  # six requests under way, answers being written
        await asyncio.wait_for(asyncio.gather(*writers), 30)
    finally:
        first.terminate()
    assert first.wait() == -signal.SIGKILL
    assert len(unanswered) == 6

    with sqlite3.connect(state_dir / "state.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    second = GatewayProcess(gateway_args(prosody, state_dir), tmp_path / "second.log")
    await asyncio.to_thread(second.start)
    try:
        for key, (body, json) in answered.items():
            async with http.session.post(f"{second.url}/msg/{bob.local}", data=body,
                                         headers={**headers, KEY: key}) as reply:
                assert reply.status == 201, key
                assert reply.headers["Idempotent-Replayed"] == "true", key
                assert await reply.json() == json
        for key, body in unanswered.items():  # never answered: sent now if not before
            async with http.session.post(f"{second.url}/msg/{bob.local}", data=body,
                                         headers={**headers, KEY: key}) as reply:
                assert reply.status == 201
        async with http.session.post(f"{second.url}/msg/{bob.local}", data="the end",
                                     headers=headers) as reply:
            assert reply.status == 201
    finally:
        second.stop()
    received: collections.Counter[str] = collections.Counter()
    while True:  # one session sends in order: what the replays could have sent came first
        body = (await inbox.next(timeout=20)).body
        if body == "the end":
            break
        received[body] += 1
    assert {body: received[body] for body, _ in answered.values()} == \
        {body: 1 for body, _ in answered.values()}
    assert all(received[body] in (1, 2) for body in unanswered.values())


def test_a_second_gateway_on_one_state_dir_refuses_to_start_saying_why(
        tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    args = ["--domain", "example.org", "--state-dir", str(state_dir)]
    first = GatewayProcess(args, tmp_path / "first.log")
    first.start()
    try:
        second = subprocess.run(
            [sys.executable, "-m", "xmpp_post", "serve", "--listen",
             f"127.0.0.1:{free_port()}", *args],
            env={**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}, capture_output=True,
            text=True, timeout=60)
        assert first.running
    finally:
        first.stop()
    assert second.returncode == 2, second.stderr
    assert (f"configuration error: state_dir: {state_dir.resolve()} is in use by another "
            f"xmpp-post (process {first.pid})") in second.stderr
    assert "Traceback" not in second.stderr


async def test_metrics_report_the_size_and_rows_and_readyz_is_ready(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        tmp_path: Path) -> None:
    gateway = await start_gateway(state_dir=str(tmp_path / "state"))
    alice = account("alice")
    for n in range(3):
        reply = await http.post(gateway, "/msg/bob", f"m{n}", sender=alice,
                                headers={KEY: f"metrics-{n}"})
        assert reply.status == 201
    assert gateway.state is not None
    await gateway.state.upkeep.count_rows()  # as the upkeep does
    async with http.session.get(gateway.url + "/metrics") as got:
        text = await got.text()
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith(
        "xmpp_post_state_"))
    assert float(lines["xmpp_post_state_bytes"]) > 4096
    assert float(lines['xmpp_post_state_rows{kind="idempotency"}']) == 3
    assert float(lines['xmpp_post_state_rows{kind="queue"}']) == 0
    async with http.session.get(gateway.url + "/readyz") as got:
        assert await got.json() == {"status": "ready"}


async def test_the_state_files_hold_no_password_and_no_secret_header(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    gateway = await start_gateway(state_dir=str(state_dir))
    alice, bob = account("alice", password="pw-7d1e-never-on-disk"), account("bob")
    await receiver(bob)
    reply = await http.post(gateway, f"/msg/{bob.local}", "hello", sender=alice,
                            headers={KEY: "secret-check"})
    assert reply.status == 201
    ntfy = await http.post(gateway, f"/{bob.local}", "door", sender=alice, headers={
        KEY: "ntfy-check",
        "Actions": "http, Open, https://door.example.org/open, "
                   "headers.Authorization=Bearer tk-93ab-never-on-disk"})
    assert ntfy.status == 200, ntfy.text
    assert "tk-93ab" not in ntfy.text  # not echoed either
    again = await http.post(gateway, f"/{bob.local}", "door", sender=alice, headers={
        KEY: "ntfy-check",
        "Actions": "http, Open, https://door.example.org/open, "
                   "headers.Authorization=Bearer tk-93ab-never-on-disk"})
    assert again.json == ntfy.json and again.headers["Idempotent-Replayed"] == "true"
    await gateway.stop()  # the WAL checkpointed into the database
    everything = b"".join(path.read_bytes() for path in state_dir.iterdir())
    for secret in (b"pw-7d1e", b"tk-93ab", basic(alice.jid, alice.password).split()[1].encode(),
                   b"secret-check", b"ntfy-check"):
        assert secret not in everything, secret


async def test_with_redis_shared_things_stay_there_and_the_instance_keeps_its_own(
        redis_server: RedisServer, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s" * 48)
    secret.chmod(0o600)
    settings = config.load({"domain": ["example.org"], "listen": "127.0.0.1:0",
                            "redis_url": redis_server.url, "state_secret_file": str(secret),
                            "state_dir": str(tmp_path / "state")}, environ={})
    gateway = Gateway(settings, FakeRelay())
    try:
        assert isinstance(gateway.guards.idempotency, RedisIdempotencyStore)
        assert isinstance(gateway.guards.throttle, RedisLoginThrottle)
        assert gateway.lasting.durable and isinstance(gateway.lasting.kv, SqliteKeyValue)
        await gateway.lasting.kv.put("omemo", "device", b"1")
    finally:
        await gateway.stop()
    gateway = Gateway(settings, FakeRelay())  # the directory was released, its data kept
    try:
        assert await gateway.lasting.kv.get("omemo", "device") == b"1"
    finally:
        await gateway.stop()
