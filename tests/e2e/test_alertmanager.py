"""A real Prometheus Alertmanager posts to the gateway with ``?template=alertmanager``, and
with its Slack notifier to a webhook URL.

The test starts Alertmanager (Debian's ``prometheus-alertmanager``, from
``lab.alertmanager``) on a free loopback port with a throwaway configuration whose
webhook receivers are the gateway: one with ``http_config.basic_auth``, one with the
credentials in the URL (as docs/webhooks.md tells Go tools' users), its cluster off and
its storage in a temporary folder. An alert pushed
into Alertmanager's API arrives as a message, then its resolution; Alertmanager counts
no failed notification. The Slack notifier posts to ``/hooks/xph_…`` with no credentials
but the URL, as it posts to Slack, and takes the gateway's ``ok`` for success.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from tests.helpers import Account, AccountFactory, GatewayFactory, ReceiverFactory
from tests.helpers.grants import gateway_from, secret_file, toml
from xmpp_post.auth.webhook_urls import new_secret
from xmpp_post.lab.alertmanager import AlertmanagerServer
from xmpp_post.lab.prosody import ProsodyServer

BINARY = "prometheus-alertmanager"


def alertmanager_config(gateway: str, bob: Account, carol: Account, sender: Account) -> str:
    """Grouped by alert name, flushed within a second, resolved alerts sent."""
    host = gateway.removeprefix("http://")
    in_url = f"http://{quote(sender.jid, safe='')}:{quote(sender.password, safe='')}@{host}"
    return json.dumps({  # JSON is YAML
        "global": {"resolve_timeout": "1s"},
        "route": {"receiver": "basic-auth", "group_by": ["alertname"], "group_wait": "0s",
                  "group_interval": "1s", "repeat_interval": "1h",
                  "routes": [{"receiver": "basic-auth", "continue": True},
                             {"receiver": "url-credentials"}]},
        "receivers": [
            {"name": "basic-auth", "webhook_configs": [{
                "url": f"{gateway}/msg/{bob.jid}?template=alertmanager",
                "send_resolved": True,
                "http_config": {"basic_auth": {"username": sender.jid,
                                               "password": sender.password}}}]},
            {"name": "url-credentials", "webhook_configs": [{
                "url": f"{in_url}/msg/{carol.jid}?template=alertmanager",
                "send_resolved": True}]},
        ],
    })


async def push(url: str, ends: datetime | None = None) -> None:
    alert = {"labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
             "annotations": {"summary": "Disk /var almost full on db-1",
                             "description": "Only 3% left."},
             "generatorURL": "http://prometheus.example.org/graph?g0.expr=disk"}
    if ends is not None:
        alert["endsAt"] = ends.isoformat().replace("+00:00", "Z")
    async with aiohttp.ClientSession() as session, \
            session.post(url + "/api/v2/alerts", json=[alert]) as resp:
        assert resp.status == 200, await resp.text()


async def notifications(url: str, integration: str = "webhook") -> tuple[float, float]:
    """(notifications sent, notifications failed) by one integration (webhook, slack)."""
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
        text = await resp.text()
    counts = {"alertmanager_notifications_total": 0.0,
              "alertmanager_notifications_failed_total": 0.0}
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name in counts and f'integration="{integration}"' in rest:
            counts[name] += float(line.rsplit(" ", 1)[1])
    return counts["alertmanager_notifications_total"], \
        counts["alertmanager_notifications_failed_total"]


async def test_an_alert_and_its_resolution_arrive_as_messages(
        start_gateway: GatewayFactory, account: AccountFactory, receiver: ReceiverFactory,
        alertmanager: AlertmanagerServer) -> None:
    url = alertmanager.url
    sender, bob, carol = account("alertmanager"), account("bob"), account("carol")
    bob_inbox, carol_inbox = await receiver(bob), await receiver(carol)
    gateway = await start_gateway()
    await asyncio.to_thread(alertmanager.start,
                            alertmanager_config(gateway.url, bob, carol, sender))
    await push(url)
    for inbox in (bob_inbox, carol_inbox):
        firing = await inbox.next(timeout=30)
        assert firing.sender.startswith(sender.jid + "/")
        assert firing.body.startswith("*[FIRING:1]* DiskFull"), firing.body
        assert "Disk /var almost full on db-1" in firing.body
        assert "http://prometheus.example.org/graph?g0.expr=disk" in firing.body
    await push(url, ends=datetime.now(UTC) - timedelta(seconds=1))
    for inbox in (bob_inbox, carol_inbox):
        resolved = await inbox.next(timeout=30)
        assert resolved.body.startswith("*[RESOLVED]* DiskFull"), resolved.body
        assert "Disk /var almost full on db-1" in resolved.body
    deadline = time.monotonic() + 10
    while True:  # the messages arrive before Alertmanager has read our answers
        sent, failed = await notifications(url)
        if sent >= 4 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert (sent, failed) == (4, 0), alertmanager.log_tail()


def slack_config(api_url: str, channel: str) -> str:
    """One receiver, Alertmanager's Slack notifier: the alert's summary as the text."""
    return json.dumps({
        "global": {"resolve_timeout": "1s"},
        "route": {"receiver": "slack", "group_by": ["alertname"], "group_wait": "0s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "slack", "slack_configs": [{
            "api_url": api_url, "channel": channel, "send_resolved": True,
            "text": "{{ .CommonAnnotations.summary }}"}]}],
    })


async def test_the_slack_notifier_posts_to_a_webhook_url(
        prosody: ProsodyServer, account: AccountFactory, receiver: ReceiverFactory,
        alertmanager: AlertmanagerServer, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="xmpp_post")
    url = alertmanager.url
    bot, bob, carol = account("bot"), account("bob"), account("carol")
    bob_inbox, carol_inbox = await receiver(bob), await receiver(carol)
    secret = new_secret()
    gateway_file = tmp_path / "gw.toml"
    password = secret_file(tmp_path, "bot.password", bot.password)
    gateway_file.write_text(toml({
        "accounts": {bot.jid: {"password_file": str(password)}},
        "webhooks": {"alertmanager": {
            "verify": "url", "sha256": hashlib.sha256(secret.encode()).hexdigest(),
            "account": bot.jid, "to": [bob.jid, carol.jid]}}}))
    async with gateway_from(prosody, gateway_file) as gateway:
        # The channel names bob (by local part): carol gets nothing.
        await asyncio.to_thread(alertmanager.start, slack_config(
            f"{gateway.url}/hooks/{secret}", f"#{bob.local}"))
        await push(url)
        firing = await bob_inbox.next(timeout=30)
        assert firing.sender.startswith(bot.jid + "/")
        assert firing.body.startswith("*[FIRING:1] DiskFull"), firing.body
        assert "Disk /var almost full on db-1" in firing.body
        await push(url, ends=datetime.now(UTC) - timedelta(seconds=1))
        resolved = await bob_inbox.next(timeout=30)
        assert resolved.body.startswith("*[RESOLVED] DiskFull"), resolved.body
        deadline = time.monotonic() + 10
        while True:  # the messages arrive before Alertmanager has read our answers
            sent, failed = await notifications(url, "slack")
            if sent >= 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert (sent, failed) == (2, 0), alertmanager.log_tail()
    assert carol_inbox.pending() == []
    assert secret not in caplog.text + "".join(
        str(getattr(record, "fields", "")) for record in caplog.records)
