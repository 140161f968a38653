"""API tokens end to end: Bearer and Basic, scopes, templates, rates, revocation by reload,
a configured account whose password changed on the server, and no secrets anywhere."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Account, AccountFactory, Client, ReceiverFactory, basic
from tests.helpers.faults import client_from
from tests.helpers.grants import bearer, gateway_from, metric, secret_file, token_entry, toml
from xmpp_post.lab.prosody import ProsodyServer, free_port
from xmpp_post.lab.receiver import Receiver
from xmpp_post.service import Gateway

GRAFANA = {"status": "firing", "title": "[FIRING:1] KettleHot",
           "alerts": [{"status": "firing", "labels": {"alertname": "KettleHot"},
                       "annotations": {"summary": "Kettle is on fire"}}]}


@dataclass
class Setup:
    gateway: Gateway
    bot: Account
    bob: Account
    inbox: Receiver
    path: Path
    tables: dict[str, Any]
    tokens: dict[str, str]

    def rewrite(self) -> None:
        self.path.write_text(toml(self.tables))


@pytest.fixture
async def setup(prosody: ProsodyServer, account: AccountFactory, receiver: ReceiverFactory,
                tmp_path: Path) -> AsyncIterator[Setup]:
    bot, bob = account("bot"), account("bob")
    inbox = await receiver(bob)
    password = secret_file(tmp_path, "bot.password", bot.password + "\n")
    tokens, entries = {}, {}
    for name, scope in (("ci", {}), ("bob-only", {"to": [bob.jid]}),
                        ("grafana", {"template": "grafana"}), ("slow", {"rate": "2/minute"})):
        tokens[name], entries[name] = token_entry(bot.jid, **scope)
    tables = {"accounts": {bot.jid: {"password_file": str(password)}}, "tokens": entries}
    path = tmp_path / "gw.toml"
    path.write_text(toml(tables))
    async with gateway_from(prosody, path) as gateway:
        yield Setup(gateway, bot, bob, inbox, path, tables, tokens)


async def send(http: Client, setup: Setup, path: str, text: str, token: str | None = None,
               headers: dict[str, str] | None = None, **options: Any) -> Any:
    all_headers = (bearer(token) if token else {}) | (headers or {})
    return await http.post(setup.gateway, path, text, headers=all_headers, **options)


async def test_bearer_and_basic_tokens_send_as_the_account(
        setup: Setup, http: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    answers: list[str] = []
    reply = await send(http, setup, f"/msg/{setup.bob.local}", "by bearer", setup.tokens["ci"])
    answers.append(reply.text)
    assert reply.status == 201, reply.text
    assert reply.json["from"] == setup.bot.jid
    received = await setup.inbox.next()
    assert (received.body, received.sender.split("/")[0]) == ("by bearer", setup.bot.jid)
    for user in ("ci", "whoever@else.example"):
        reply = await send(http, setup, f"/msg/{setup.bob.local}", "by basic",
                           headers={"Authorization": basic(user, setup.tokens["ci"])})
        assert reply.status == 201, reply.text
        answers.append(reply.text)
        assert (await setup.inbox.next()).body == "by basic"
    reply = await send(http, setup, f"/msg/{setup.bob.local}", "x", "xpt_revoked-or-never")
    assert (reply.status, reply.json["error"]) == (401, "invalid_credentials")
    answers.append(reply.text + str(dict(reply.headers)))
    assert "Bearer" in reply.headers["WWW-Authenticate"]
    text = (await http.request("GET", setup.gateway.url + "/metrics")).text
    assert metric(text, "xmpp_post_credential_requests_total", kind="token", name="ci") == 3
    assert metric(text, "xmpp_post_credential_failures_total", kind="token", name="ci") == 0
    assert metric(text, "xmpp_post_unknown_tokens_total") == 1
    fields = [str(getattr(record, "fields", "")) for record in caplog.records]
    assert any(setup.bot.jid in f and "token:ci" in f for f in fields)  # the logs do speak
    everything = text + caplog.text + "".join(answers + fields)
    for secret in (setup.tokens["ci"], setup.bot.password, "xpt_revoked-or-never",
                   basic("ci", setup.tokens["ci"]).split()[1]):
        assert secret not in everything, secret


async def test_a_token_with_recipients_sends_to_them_only(setup: Setup, http: Client) -> None:
    token = setup.tokens["bob-only"]
    reply = await send(http, setup, "/msg/someone-else", "no", token)
    assert (reply.status, reply.json["error"]) == (403, "recipient_not_allowed")
    reply = await send(http, setup, f"/msg/{setup.bob.local},someone-else", "no", token)
    assert (reply.status, reply.json["error"]) == (403, "recipient_not_allowed")
    reply = await send(http, setup, f"/msg/{setup.bob.local}", "yes", token)
    assert reply.status == 201, reply.text
    assert (await setup.inbox.next()).body == "yes"  # the refused ones sent nothing
    text = (await http.request("GET", setup.gateway.url + "/metrics")).text
    assert metric(text, "xmpp_post_credential_failures_total", kind="token",
                  name="bob-only") == 2


async def test_a_token_with_a_template_always_renders_with_it(setup: Setup,
                                                             http: Client) -> None:
    token = setup.tokens["grafana"]
    body = json.dumps(GRAFANA)
    reply = await send(http, setup, f"/msg/{setup.bob.local}?template=github", body, token,
                       content_type="application/json")
    assert (reply.status, reply.json["error"]) == (403, "template_not_allowed")
    for query in ("", "?template=grafana"):
        reply = await send(http, setup, f"/msg/{setup.bob.local}{query}", body, token,
                           content_type="application/json")
        assert reply.status == 201, reply.text
        assert "Kettle is on fire" in (await setup.inbox.next()).body
    # Another token may ask for a template per request.
    reply = await send(http, setup, f"/msg/{setup.bob.local}?template=grafana", body,
                       setup.tokens["ci"], content_type="application/json")
    assert reply.status == 201, reply.text
    assert "KettleHot" in (await setup.inbox.next()).body


async def test_a_token_beyond_its_rate_is_429_with_retry_after(setup: Setup,
                                                              http: Client) -> None:
    for _ in range(2):
        reply = await send(http, setup, f"/msg/{setup.bob.local}", "ok", setup.tokens["slow"])
        assert reply.status == 201, reply.text
    reply = await send(http, setup, f"/msg/{setup.bob.local}", "too much", setup.tokens["slow"])
    assert (reply.status, reply.json["error"]) == (429, "rate_limited")
    assert 1 <= int(reply.headers["Retry-After"]) <= 30
    reply = await send(http, setup, f"/msg/{setup.bob.local}", "other", setup.tokens["ci"])
    assert reply.status == 201  # the rate is the token's own
    assert [m.body for m in await setup.inbox.collect(3)] == ["ok", "ok", "other"]
    text = (await http.request("GET", setup.gateway.url + "/metrics")).text
    assert metric(text, "xmpp_post_credential_failures_total", kind="token", name="slow") == 1
    assert metric(text, "xmpp_post_credential_requests_total", kind="token", name="slow") == 3


async def test_unknown_tokens_are_throttled_per_address_valid_ones_are_not(
        setup: Setup, http: Client) -> None:
    async with client_from("127.0.0.4") as guesser:
        for expected in (401, 401, 401, 401, 401, 429):
            reply = await send(guesser, setup, "/msg/bob0", "x", "xpt_guess")
            assert reply.status == expected, reply.text
        assert reply.json["error"] == "too_many_failed_logins"
        reply = await send(guesser, setup, f"/msg/{setup.bob.local}", "mine", setup.tokens["ci"])
        assert reply.status == 201, reply.text
    assert (await setup.inbox.next()).body == "mine"


async def test_reload_revokes_at_once_keeps_sessions_and_survives_a_bad_file(
        setup: Setup, http: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    gateway, to = setup.gateway, f"/msg/{setup.bob.local}"
    assert (await send(http, setup, to, "one", setup.tokens["ci"])).status == 201
    pool = gateway.pool
    opened = pool.opened_total
    # Rotation: a second token for the same job, then the first one goes.
    setup.tokens["ci2"], setup.tables["tokens"]["ci2"] = token_entry(setup.bot.jid)
    del setup.tables["tokens"]["ci"]
    setup.rewrite()
    assert gateway.reload()
    reply = await send(http, setup, to, "revoked", setup.tokens["ci"])
    assert (reply.status, reply.json["error"]) == (401, "invalid_credentials")
    assert (await send(http, setup, to, "two", setup.tokens["ci2"])).status == 201
    assert pool.opened_total == opened  # the password did not change: same session
    # A password file others can read: the reload is refused, the running config stays.
    os.chmod(setup.tables["accounts"][setup.bot.jid]["password_file"], 0o644)
    del setup.tables["tokens"]["ci2"]
    setup.rewrite()
    assert not gateway.reload()
    assert "reload refused" in caplog.text and "group or others" in caplog.text
    assert (await send(http, setup, to, "three", setup.tokens["ci2"])).status == 201
    assert [m.body for m in await setup.inbox.collect(3)] == ["one", "two", "three"]


async def test_a_configured_password_changed_on_the_server_is_502_never_the_callers_fault(
        prosody: ProsodyServer, account: AccountFactory, receiver: ReceiverFactory,
        http: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    bot, bob = account("bot"), account("bob")
    inbox = await receiver(bob)
    password = secret_file(tmp_path, "bot.password", bot.password)
    token, entry = token_entry(bot.jid)
    path = tmp_path / "gw.toml"
    path.write_text(toml({"accounts": {bot.jid: {"password_file": str(password)}},
                          "tokens": {"ci": entry}}))
    prosody.set_password(bot.local, "changed behind our back")
    async with gateway_from(prosody, path) as gateway, client_from("127.0.0.5") as caller:
        for _ in range(7):  # more than auth_failure_limit: still not the caller's fault
            reply = await caller.post(gateway, f"/msg/{bob.local}", "x",
                                      headers=bearer(token))
            assert (reply.status, reply.json["error"]) == (502, "account_login_failed")
            assert "WWW-Authenticate" not in reply.headers
        assert any(r.levelno == logging.ERROR and bot.jid in r.getMessage()
                   for r in caplog.records)
        text = (await http.request("GET", gateway.url + "/metrics")).text
        assert metric(text, "xmpp_post_account_login_failures_total", account=bot.jid) == 7
        password.write_text("changed behind our back\n")
        assert gateway.reload()
        reply = await caller.post(gateway, f"/msg/{bob.local}", "fixed", headers=bearer(token))
        assert reply.status == 201, reply.text
    assert (await inbox.next()).body == "fixed"
    assert "changed behind our back" not in caplog.text and token not in caplog.text


async def test_sighup_reloads_a_running_gateway(
        prosody: ProsodyServer, account: AccountFactory, receiver: ReceiverFactory,
        http: Client, tmp_path: Path) -> None:
    bot, bob = account("bot"), account("bob")
    inbox = await receiver(bob)
    password = secret_file(tmp_path, "bot.password", bot.password)
    old, old_entry = token_entry(bot.jid)
    new, new_entry = token_entry(bot.jid)
    path = tmp_path / "gw.toml"
    accounts = {bot.jid: {"password_file": str(password)}}
    path.write_text(toml({"accounts": accounts, "tokens": {"old": old_entry}}))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xmpp_post", "serve", "--config", str(path),
        "--domain", prosody.domain, "--listen", f"127.0.0.1:{port}",
        "--xmpp-server", f"127.0.0.1:{prosody.c2s_port}", "--ca-file", str(prosody.cert_file),
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    log: list[str] = []

    async def wait_for(words: str) -> None:
        assert proc.stderr is not None
        while not any(words in line for line in log):
            line = await asyncio.wait_for(proc.stderr.readline(), 20)
            assert line, "the gateway exited: " + "".join(log)
            log.append(line.decode())

    async def send(token: str) -> int:
        reply = await http.request("POST", f"http://127.0.0.1:{port}/msg/{bob.local}",
                                   data=token[:8], headers={"Content-Type": "text/plain",
                                                            **bearer(token)})
        return reply.status

    try:
        await wait_for(" listening url=")
        assert await send(old) == 201
        path.write_text(toml({"accounts": accounts, "tokens": {"new": new_entry}}))
        proc.send_signal(signal.SIGHUP)
        await wait_for(" reloaded ")
        assert (await send(old), await send(new)) == (401, 201)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert [m.body for m in await inbox.collect(2)] == [old[:8], new[:8]]
    assert not any(secret in "".join(log) for secret in (old, new, bot.password))
