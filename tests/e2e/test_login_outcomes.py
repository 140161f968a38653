"""What the login throttle records, end to end against the real Prosody: a password is a
failed guess or the account's accepted one only once the XMPP server said so, whatever
the request did besides (a template that fails, a template that sends nothing).

A sender the gateway has no open session for is logged in before anything else is done
with its request, so render work is never spent on a password the server would refuse.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory
from tests.helpers.cluster import secret_file
from tests.helpers.faults import client_from
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.redis_server import RedisServer
from xmpp_post.service import Gateway

PAYLOADS = Path(__file__).parents[1] / "payloads"
JSON = "application/json"


def connections(prosody: ProsodyServer) -> int:
    return prosody.log_file.read_text().count("Client connected")


async def test_render_failures_with_a_password_never_accepted_are_throttled(
        start_gateway: GatewayFactory, account: AccountFactory, prosody: ProsodyServer,
        tmp_path: Path) -> None:
    (tmp_path / "broken.j2").write_text("one\n{{ payload.a + 1 }}\n")
    (tmp_path / "loop.j2").write_text(
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}")
    gateway = await start_gateway(template_dir=str(tmp_path))
    alice = account("alice")
    async with client_from("127.0.1.2") as attacker:
        for i, template in enumerate(("broken", "loop", "discord", "broken", "loop")):
            reply = await attacker.post(gateway, f"/msg/bob?template={template}", '{"a": "s"}',
                                        user=alice.jid, password=f"guess {i}",
                                        content_type=JSON)
            assert reply.status == 401, reply.text  # the server refused it: nothing rendered
        before = connections(prosody)
        reply = await attacker.post(gateway, "/msg/bob?template=broken", '{"a": "s"}',
                                    user=alice.jid, password="guess 5", content_type=JSON)
        assert reply.status == 429, reply.text
        assert reply.json["error"] == "too_many_failed_logins" and reply.headers["Retry-After"]
        assert connections(prosody) == before
    # The owner's own failing template is the owner's problem, never a failed login.
    async with client_from("127.0.1.3") as owner:
        for _ in range(7):
            reply = await owner.post(gateway, "/msg/bob?template=broken", '{"a": "s"}',
                                     sender=alice, content_type=JSON)
            assert (reply.status, reply.json["error"]) == (422, "template_error"), reply.text


async def _gateway(start_gateway: GatewayFactory, store: str, tmp_path: Path,
                   redis_server: RedisServer, **settings: Any) -> Gateway:
    if store == "redis":
        settings.update(redis_url=redis_server.url,
                        state_secret_file=str(secret_file(tmp_path)))
    return await start_gateway(**settings)


@pytest.mark.parametrize("ping", [False, True], ids=["no_ping", "ping"])
@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_a_skipped_render_never_makes_a_guess_the_accepted_password(
        start_gateway: GatewayFactory, account: AccountFactory, receiver: ReceiverFactory,
        tmp_path: Path, redis_server: RedisServer, store: str, ping: bool) -> None:
    gateway = await _gateway(start_gateway, store, tmp_path, redis_server,
                             auth_failure_limit="3", auth_failure_limit_account="5")
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    async with client_from("127.0.1.4") as owner:
        reply = await owner.post(gateway, f"/msg/{bob.local}", "first", sender=alice)
        assert reply.status == 201, reply.text  # the server accepted the owner's password
    await inbox.next()
    if ping:  # GitHub's ping sends nothing: it must not vouch for the password it carries
        async with client_from("127.0.1.5") as attacker:
            reply = await attacker.post(
                gateway, f"/msg/{bob.local}?template=github",
                (PAYLOADS / "github/ping.json").read_text(), user=alice.jid,
                password="not the password", content_type=JSON,
                headers={"X-GitHub-Event": "ping"})
            assert reply.status == 401, reply.text
    await gateway.relay.pool.stop()  # type: ignore[attr-defined]  # no session to reuse
    for address, guesses in (("127.0.1.6", 3), ("127.0.1.7", 2)):
        async with client_from(address) as attacker:
            for i in range(guesses):
                reply = await attacker.post(gateway, f"/msg/{bob.local}", "x", user=alice.jid,
                                            password=f"guess {address} {i}")
                assert reply.status in (401, 429), reply.text
    async with client_from("127.0.1.8") as stranger:  # the account is locked for guesses
        reply = await stranger.post(gateway, f"/msg/{bob.local}", "x", user=alice.jid,
                                    password="one more")
        assert reply.status == 429, reply.text
    async with client_from("127.0.1.9") as owner:  # but not for its accepted password
        reply = await owner.post(gateway, f"/msg/{bob.local}", "it is me", sender=alice)
        assert reply.status == 201, reply.text
    assert (await inbox.next()).body == "it is me"


async def test_the_owners_skipped_render_logs_in_and_succeeds(
        gateway: Gateway, http: Client, account: AccountFactory) -> None:
    alice = account("alice")
    ping = (PAYLOADS / "github/ping.json").read_text()
    reply = await http.post(gateway, "/msg/bob?template=github", ping, sender=alice,
                            content_type=JSON, headers={"X-GitHub-Event": "ping"})
    assert reply.status == 200 and reply.json == {"sent": 0, "skipped": True,
                                                  "template": "github"}
    assert gateway.relay.pool.open_sessions == 1  # type: ignore[attr-defined]


async def test_a_password_sasl_cannot_carry_is_a_failed_login_without_a_connection(
        gateway: Gateway, account: AccountFactory, prosody: ProsodyServer,
        caplog: pytest.LogCaptureFixture) -> None:
    alice = account("alice")
    before = connections(prosody)
    async with client_from("127.0.1.10") as attacker:
        for i in range(5):
            reply = await attacker.post(gateway, "/msg/bob", "x", user=alice.jid,
                                        password=f"bad\x01{i}")
            assert (reply.status, reply.json["error"]) == (401, "invalid_credentials")
        reply = await attacker.post(gateway, "/msg/bob", "x", user=alice.jid,
                                    password="bad\x01again")
        assert reply.status == 429, reply.text
    assert connections(prosody) == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_logging_in_first_costs_no_second_login(
        gateway: Gateway, http: Client, account: AccountFactory, prosody: ProsodyServer,
        receiver: ReceiverFactory) -> None:
    alice, bob, carol = account("alice"), account("bob"), account("carol")
    inboxes = [await receiver(bob), await receiver(carol)]
    before = connections(prosody)
    reply = await http.post(gateway, f"/msg/{bob.local},{carol.local}", "hello", sender=alice)
    assert reply.status == 201, reply.text
    assert [(await inbox.next()).body for inbox in inboxes] == ["hello", "hello"]
    assert connections(prosody) == before + 1  # the login's session delivered both
