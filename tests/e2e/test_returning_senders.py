"""Returning senders against the real Prosody: a login with SCRAM's SaltedPassword kept
from the sender's last login (``xmpp.salted``) skips PBKDF2, yet the server checks every
login: a password changed on the server is refused, a wrong password is a whole login the
server refuses (and the throttle counts), and nothing of SCRAM reaches a log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory
from tests.helpers.faults import client_from
from xmpp_post.errors import LoginRefused
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.model import Sender
from xmpp_post.testing import ManualClock
from xmpp_post.xmpp.salted import SaltedPasswords
from xmpp_post.xmpp.session import SessionOptions, XmppSession

PBKDF2 = hashlib.pbkdf2_hmac  # the test's own, not counted


@pytest.fixture
def pbkdf2_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many PBKDF2s of a login's size this process computes (slixmpp's check aside)."""
    calls: list[int] = []
    real = hashlib.pbkdf2_hmac

    def counting(name: str, password: bytes, salt: bytes, rounds: int,
                 *rest: Any) -> bytes:
        if rounds >= 1000:
            calls.append(rounds)
        return real(name, password, salt, rounds, *rest)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counting)
    yield calls


def digest(password: str) -> bytes:  # stands in for the pool's keyed digest
    return hashlib.blake2b(password.encode(), key=b"test key", digest_size=32).digest()


async def login(prosody: ProsodyServer, cache: SaltedPasswords, jid: str,
                password: str) -> None:
    """Open and close one session of ``jid`` with ``cache``'s memo of that password."""
    options = SessionOptions(server=("127.0.0.1", prosody.c2s_port),
                             ca_file=prosody.cert_file, connect_timeout=5)
    session = XmppSession(Sender(jid, password), options,
                          salted=cache.login(jid, digest(password)))
    try:
        await session.open()
    finally:
        await session.close(wait=1)


def change_keys_keeping_salt(prosody: ProsodyServer, local: str, password: str) -> None:
    """Give an account another password on the server with the same salt and iteration
    count (``prosodyctl passwd`` would draw a new salt), as another server might."""
    assert prosody.workdir is not None
    path = prosody.workdir / "data" / prosody.domain / "accounts" / f"{local}.dat"
    text = path.read_text()
    salt = re.search(r'\["salt"\] = "([^"]+)"', text)
    rounds = re.search(r'\["iteration_count"\] = (\d+)', text)
    assert salt is not None and rounds is not None
    salted = PBKDF2("sha1", password.encode(), salt[1].encode(), int(rounds[1]))
    client_key = hmac.digest(salted, b"Client Key", "sha1")
    stored = hashlib.sha1(client_key).hexdigest()
    server = hmac.digest(salted, b"Server Key", "sha1").hex()
    text = re.sub(r'(\["stored_key"\] = ")[0-9a-f]+', rf"\g<1>{stored}", text)
    path.write_text(re.sub(r'(\["server_key"\] = ")[0-9a-f]+', rf"\g<1>{server}", text))


# sessions -------------------------------------------------------------------------------


async def test_a_returning_login_skips_pbkdf2_yet_the_server_checks_it(
        prosody: ProsodyServer, account: AccountFactory, pbkdf2_calls: list[int]) -> None:
    alice = account("alice")
    cache = SaltedPasswords(10)
    await login(prosody, cache, alice.jid, alice.password)
    assert len(pbkdf2_calls) == 1 and len(cache) == 1
    await login(prosody, cache, alice.jid, alice.password)
    assert len(pbkdf2_calls) == 1 and cache.hits == 1  # no PBKDF2 the second time
    # Another password on the server, same salt: the kept value is used, and refused.
    change_keys_keeping_salt(prosody, alice.local, "another")
    with pytest.raises(LoginRefused):
        await login(prosody, cache, alice.jid, alice.password)
    assert len(pbkdf2_calls) == 1 and cache.hits == 2
    assert len(cache) == 0  # a refused login drops what it used
    await login(prosody, cache, alice.jid, "another")
    assert len(pbkdf2_calls) == 2 and len(cache) == 1


async def test_a_wrong_password_is_a_whole_login_the_server_refuses(
        prosody: ProsodyServer, account: AccountFactory, pbkdf2_calls: list[int]) -> None:
    alice = account("alice")
    cache = SaltedPasswords(10)
    await login(prosody, cache, alice.jid, alice.password)
    connected = prosody.log_file.read_text().count("Client connected")
    for attempt in range(2):
        with pytest.raises(LoginRefused):
            await login(prosody, cache, alice.jid, "wrong")
        assert len(pbkdf2_calls) == 2 + attempt  # computed each time, never kept
    assert prosody.log_file.read_text().count("Client connected") == connected + 2
    assert len(cache) == 1 and cache.hits == 0
    await login(prosody, cache, alice.jid, alice.password)  # the right one still kept
    assert cache.hits == 1


async def test_nothing_of_scram_reaches_a_log(
        prosody: ProsodyServer, account: AccountFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="slixmpp")  # the gateway holds it at warning
    alice = account("alice")
    cache = SaltedPasswords(10)
    await login(prosody, cache, alice.jid, alice.password)
    await login(prosody, cache, alice.jid, alice.password)
    assert cache.hits == 1
    [entry] = cache._entries.values()
    salted = entry.salted
    keys = [salted, hmac.digest(salted, b"Client Key", "sha1"),
            hmac.digest(salted, b"Server Key", "sha1")]
    shown: list[Callable[[bytes], str]] = [
        bytes.hex, lambda b: base64.b64encode(b).decode(), repr,
        lambda b: b.decode("latin-1")]
    assert "SEND" in caplog.text  # slixmpp's debug log was captured
    for key in keys:
        for form in shown:
            assert form(key) not in caplog.text
    assert alice.password not in caplog.text


# through the gateway --------------------------------------------------------------------


async def test_a_returning_sender_whose_password_changed_on_the_server_gets_401(
        start_gateway: GatewayFactory, account: AccountFactory, receiver: ReceiverFactory,
        prosody: ProsodyServer, http: Client) -> None:
    clock = ManualClock()
    gateway = await start_gateway(clock=clock, idle_timeout="60")
    salted = gateway.xmpp_relay.salted
    assert salted is not None
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)

    async def post(body: str, password: str) -> int:
        reply = await http.post(gateway, f"/msg/{bob.local}", body, user=alice.jid,
                                password=password)
        return reply.status

    async def idle_sessions_closed() -> None:
        clock.advance(61)
        assert gateway.pool.close_idle() == 1

    assert await post("first", alice.password) == 201
    await idle_sessions_closed()
    assert await post("returning", alice.password) == 201
    assert (gateway.pool.opened_total, salted.hits) == (2, 1)
    await idle_sessions_closed()
    prosody.set_password(alice.local, "changed on the server")
    assert await post("old password", alice.password) == 401
    assert len(salted) == 0  # the server drew a new salt: the kept value is gone
    assert await post("new password", "changed on the server") == 201
    await idle_sessions_closed()
    assert await post("old again", alice.password) == 401
    assert await post("new, returning", "changed on the server") == 201
    assert salted.hits == 2
    assert [m.body for m in await inbox.collect(4)] == [
        "first", "returning", "new password", "new, returning"]


async def test_wrong_passwords_of_a_returning_sender_count_in_the_throttle(
        start_gateway: GatewayFactory, account: AccountFactory, prosody: ProsodyServer,
        http: Client) -> None:
    clock = ManualClock()
    gateway = await start_gateway(clock=clock, idle_timeout="60", auth_failure_limit="3")
    alice, bob = account("alice"), account("bob")
    assert (await http.post(gateway, f"/msg/{bob.local}", "x", sender=alice)).status == 201
    clock.advance(61)
    assert gateway.pool.close_idle() == 1
    connected = prosody.log_file.read_text().count("Client connected")
    async with client_from("127.0.0.21") as attacker:
        for n in range(3):
            reply = await attacker.post(gateway, f"/msg/{bob.local}", "x", user=alice.jid,
                                        password=f"guess {n}")
            assert reply.status == 401, reply.text
        assert prosody.log_file.read_text().count("Client connected") == connected + 3
        reply = await attacker.post(gateway, f"/msg/{bob.local}", "x", sender=alice)
        assert reply.status == 429  # locked out, even with the password the cache holds
    assert prosody.log_file.read_text().count("Client connected") == connected + 3
