"""Webhook URLs end to end, against the real Prosody, with real clients: curl posting
Slack's JSON and a form's ``payload``, Apprise's ``mmost://``; the payload's channel; a
wrong secret (404, throttled); adding, rotating and revoking by reload; the secret in no
log line, metric or answer after all of them, nor in the access log of the HAProxy that
deploy/haproxy.cfg configures. (A real Alertmanager's ``slack_configs`` is in
test_alertmanager.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import apprise
import pytest

from tests.helpers import Account, AccountFactory, Client, ReceiverFactory
from tests.helpers.faults import client_from, eventually
from tests.helpers.grants import gateway_from, metric, secret_file, toml
from xmpp_post.auth.webhook_urls import new_secret
from xmpp_post.lab.haproxy import HaproxyServer
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.service import Gateway

SLACK = {"text": "Disk *full* on db-1", "username": "Uptime Kuma", "icon_emoji": ":robot:",
         "attachments": [{"title": "db-1 is down", "title_link": "https://kuma.example/1",
                          "text": "timeout after 48 s", "color": "#ff0000"}]}


@dataclass
class Urls:
    gateway: Gateway
    bob: Account
    carol: Account
    bob_inbox: Receiver
    carol_inbox: Receiver
    secret: str  # /hooks/<secret> sends to bob and carol
    write: Any  # write(**entries): the configuration file with these webhook URLs


def url_entry(secret: str, account: str, to: list[str], **more: Any) -> dict[str, Any]:
    return {"verify": "url", "sha256": hashlib.sha256(secret.encode()).hexdigest(),
            "account": account, "to": to, **more}


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything the gateway logs, at every level (its own loggers and aiohttp's)."""
    for name in ("xmpp_post", "aiohttp"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def gateway_log(caplog: pytest.LogCaptureFixture) -> str:
    """The gateway's log lines with their fields (not the clients' own logs: Apprise
    logs the URL it posts to)."""
    return "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records
                     if r.name.startswith(("xmpp_post", "aiohttp")))


@pytest.fixture
async def urls(prosody: ProsodyServer, account: AccountFactory, receiver: ReceiverFactory,
               tmp_path: Path) -> AsyncIterator[Urls]:
    bot, bob, carol = account("bot"), account("bob"), account("carol")
    bob_inbox, carol_inbox = await receiver(bob), await receiver(carol)
    password = secret_file(tmp_path, "bot.password", bot.password + "\n")
    path = tmp_path / "gw.toml"
    secret = new_secret()

    def write(**entries: dict[str, Any]) -> None:
        path.write_text(toml({"accounts": {bot.jid: {"password_file": str(password)}},
                              "webhooks": entries}))

    write(kuma=url_entry(secret, bot.jid, [bob.jid, carol.jid]))
    async with gateway_from(prosody, path) as gateway:
        yield Urls(gateway, bob, carol, bob_inbox, carol_inbox, secret, write)


async def curl(*args: str) -> tuple[int, str, str]:
    """(status, Content-Type, body) of a request made by the curl program."""
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-o", "-", "-w", "\n%{http_code} %{content_type}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    body, _, tail = out.decode().rpartition("\n")
    status, _, content_type = tail.partition(" ")
    return int(status), content_type, body


async def test_curl_posts_slack_json_and_a_form_and_gets_ok(urls: Urls,
                                                            logged: pytest.LogCaptureFixture,
                                                            http: Client) -> None:
    url = f"{urls.gateway.url}/hooks/{urls.secret}"
    as_json = await curl("-H", "Content-Type: application/json", "--data", json.dumps(SLACK),
                         url)
    as_form = await curl("--data-urlencode", "payload=" + json.dumps({"text": "from a form"}),
                         url)
    bare = await curl("--data", json.dumps({"text": "JSON sent as a form"}), url)
    for status, content_type, body in (as_json, as_form, bare):
        assert (status, body) == (200, "ok") and content_type.startswith("text/plain")
    for inbox in (urls.bob_inbox, urls.carol_inbox):
        first, second, third = await inbox.collect(3)
        assert first.body.startswith("Disk *full* on db-1"), first.body
        assert "*db-1 is down*\nhttps://kuma.example/1\ntimeout after 48 s" in first.body
        assert (second.body, third.body) == ("from a form", "JSON sent as a form")
    text = gateway_log(logged)
    assert urls.secret not in text
    assert f"/hooks/{urls.secret[:8]}…" in text  # the request lines say which URL, cut
    metrics = (await http.request("GET", urls.gateway.url + "/metrics")).text
    assert metric(metrics, "xmpp_post_credential_requests_total", kind="webhook",
                  name="kuma") == 3
    described = (await http.request("GET", urls.gateway.url + "/openapi.json")).text
    assert "/hooks/xph_{secret}" in json.loads(described)["paths"]
    assert urls.secret not in metrics + described


async def test_the_channel_picks_one_of_to_and_nothing_else(urls: Urls, http: Client) -> None:
    url = f"{urls.gateway.url}/hooks/{urls.secret}"
    for channel, text in ((f"#{urls.bob.local}", "to bob by local part"),
                          (urls.carol.jid, "to carol by JID"),
                          ("@somebody@example.org", "to both: not one of to"),
                          ("#random", "to both: no such channel")):
        reply = await http.request("POST", url, data=json.dumps({"text": text,
                                                                 "channel": channel}),
                                   headers={"Content-Type": "application/json"})
        assert (reply.status, reply.text) == (200, "ok")
    assert [m.body for m in await urls.bob_inbox.collect(3)] == [
        "to bob by local part", "to both: not one of to", "to both: no such channel"]
    assert [m.body for m in await urls.carol_inbox.collect(3)] == [
        "to carol by JID", "to both: not one of to", "to both: no such channel"]
    # The URL is all a tool was given: a query string is refused, not read.
    reply = await http.request("POST", f"{url}?to={urls.bob.jid}&template=github",
                               data=json.dumps({"text": "x"}),
                               headers={"Content-Type": "application/json"})
    assert (reply.status, reply.json["error"]) == (400, "query_not_allowed")
    assert urls.bob_inbox.pending() == [] and urls.carol_inbox.pending() == []


async def test_apprise_mmost_posts_to_the_url(urls: Urls, logged: pytest.LogCaptureFixture,
                                              ) -> None:
    port = urls.gateway.url.rsplit(":", 1)[1]
    notifier = apprise.Apprise()
    assert notifier.add(f"mmost://127.0.0.1:{port}/{urls.secret}")
    assert notifier.add(f"mmost://127.0.0.1:{port}/{urls.secret}?channel={urls.bob.local}")
    sent = await asyncio.to_thread(notifier.notify, title="Backup", body="Backup finished")
    assert sent  # Apprise took both answers for success (2.x: a truthy AppriseResult)
    bob = [m.body for m in await urls.bob_inbox.collect(2)]
    carol = await urls.carol_inbox.next()
    assert bob == [carol.body] * 2 and "Backup finished" in carol.body
    assert urls.carol_inbox.pending() == []  # the second went to bob's channel only
    assert urls.secret not in gateway_log(logged)


async def test_a_wrong_secret_is_404_and_throttled_per_address(
        urls: Urls, http: Client, logged: pytest.LogCaptureFixture) -> None:
    body, headers = json.dumps(SLACK), {"Content-Type": "application/json"}
    guess = new_secret()
    async with client_from("127.0.0.3") as attacker:
        url = f"{urls.gateway.url}/hooks/{guess}"
        for expected in (404, 404, 404, 404, 404, 429):  # auth_failure_limit is 5
            reply = await attacker.request("POST", url, data=body, headers=headers)
            assert reply.status == expected, reply.text
            assert reply.headers["Content-Type"].startswith("application/json")
        assert reply.json["error"] == "too_many_failed_logins" and reply.headers["Retry-After"]
    first = await http.request("POST", url, data=body, headers=headers)  # another address
    assert first.json == {"error": "webhook_not_found",
                          "message": "no webhook is configured at this URL"}
    # A URL webhook is not reachable by its name, which is no secret.
    named = await http.request("POST", f"{urls.gateway.url}/hooks/kuma", data=body,
                               headers=headers)
    assert (named.status, named.json["error"]) == (404, "webhook_not_found")
    metrics = (await http.request("GET", urls.gateway.url + "/metrics")).text
    assert metric(metrics, "xmpp_post_unknown_webhook_urls_total") == 7
    assert urls.bob_inbox.pending() == []
    text = gateway_log(logged)
    assert "refused credentials (webhook_url) from 127.0.0.3" in text
    assert guess not in text + metrics + first.text + named.text
    assert guess[:8] + "…" in text


async def test_reload_adds_rotates_and_revokes(urls: Urls, http: Client) -> None:
    async def send(secret: str, text: str) -> int:
        reply = await http.request("POST", f"{urls.gateway.url}/hooks/{secret}",
                                   data=urlencode({"payload": json.dumps({"text": text})}),
                                   headers={"Content-Type":
                                            "application/x-www-form-urlencoded"})
        return reply.status

    old, new = urls.secret, new_secret()
    bot = urls.gateway.live.webhooks["kuma"].account
    to = [urls.bob.jid]
    assert await send(new, "not yet") == 404
    urls.write(kuma=url_entry(old, bot, to), kuma_2=url_entry(new, bot, to))
    assert urls.gateway.reload()
    assert (await send(old, "old"), await send(new, "new")) == (200, 200)
    urls.write(kuma_2=url_entry(new, bot, to))
    assert urls.gateway.reload()
    assert (await send(old, "revoked"), await send(new, "still")) == (404, 200)
    assert [m.body for m in await urls.bob_inbox.collect(3)] == ["old", "new", "still"]
    assert urls.bob_inbox.pending() == []


HAPROXY_CFG = Path(__file__).parents[2] / "deploy" / "haproxy.cfg"


async def test_haproxy_logs_the_url_cut_before_its_secret(urls: Urls, http: Client) -> None:
    haproxy = HaproxyServer(HAPROXY_CFG.read_text(), [("gw1", "127.0.0.1", urls.gateway.port)],
                            forwardfor=True)
    guess = new_secret()
    try:
        await asyncio.to_thread(haproxy.start)
        await asyncio.to_thread(haproxy.wait_for, {"gw1": "UP"})
        for secret, status in ((urls.secret, 200), (guess, 404)):
            reply = await http.request("POST", f"{haproxy.url}/hooks/{secret}",
                                       data=json.dumps({"text": "through HAProxy"}),
                                       headers={"Content-Type": "application/json"})
            assert reply.status == status, reply.text
        reply = await http.request("POST", f"{haproxy.url}/msg/x?auth=c2VjcmV0", data="x")
        assert reply.status == 401

        def posts() -> list[str]:
            return re.findall(r'"POST [^"]*"', haproxy.log_file.read_text())

        await eventually(lambda: len(posts()) == 3)  # written as each request ends
        logged = posts()
    finally:
        await asyncio.to_thread(haproxy.close)
    assert logged == [f'"POST /hooks/{urls.secret[:8]}... HTTP/1.1"',
                       f'"POST /hooks/{guess[:8]}... HTTP/1.1"', '"POST /msg/x HTTP/1.1"']
    assert (await urls.bob_inbox.next()).body == "through HAProxy"
