"""The bots' runtime with the built-in alert actions, end to end: a real Alertmanager
notifies the gateway's webhook URL as the bot's account; a reply (XEP-0461) to that
alert's message, sent to the bot by a real client, makes the silence in Alertmanager and
is answered in the chat, without reaching the bot's webhook; a stranger's reply is
refused; any other message goes to the webhook."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from slixmpp.xmlstream import ET

from tests.helpers import AccountFactory, GatewayFactory, ReceiverFactory
from tests.helpers.alerts import LABELS, notifying
from tests.helpers.bot_endpoint import Endpoint, new_secret, private_file
from tests.helpers.grants import toml
from xmpp_post.auth.webhook_urls import new_secret as new_url_secret
from xmpp_post.bots.alert_actions import REFUSED
from xmpp_post.bots.alert_memory import NAMESPACE
from xmpp_post.lab.alertmanager import AlertmanagerServer


def reply_to(message_id: str, author: str) -> ET.Element:
    return ET.Element("{urn:xmpp:reply:0}reply", {"id": message_id, "to": author})


async def test_a_reply_to_an_alert_silences_it_through_the_bot(
        start_gateway: GatewayFactory, account: AccountFactory, receiver: ReceiverFactory,
        alertmanager: AlertmanagerServer, tmp_path: Path) -> None:
    bot, bob, mallory = account("oncall"), account("bob"), account("mallory")
    endpoint = await Endpoint(new_secret()).start()
    url_secret = new_url_secret()
    path = tmp_path / "gw.toml"
    path.write_text(toml({
        "accounts": {bot.jid: {"password_file": str(private_file(tmp_path / "pw",
                                                                  bot.password))}},
        "webhooks": {"alertmanager": {
            "verify": "url", "sha256": hashlib.sha256(url_secret.encode()).hexdigest(),
            "account": bot.jid, "to": [bob.jid, mallory.jid], "template": "alertmanager"}},
        "bots": {"b": {"account": bot.jid, "url": endpoint.url,
                       "secret_file": str(private_file(tmp_path / "whsec", endpoint.secret)),
                       "alertmanager_url": alertmanager.url, "allow": [bob.jid]}}}))
    try:
        gateway = await start_gateway(config_file=path, state_dir=str(tmp_path / "state"))
        await gateway.bots.online("b")
        bob_inbox, mallory_inbox = await receiver(bob), await receiver(mallory)
        await asyncio.to_thread(alertmanager.start,
                                notifying(f"{gateway.url}/hooks/{url_secret}"))
        await asyncio.to_thread(alertmanager.push, LABELS, {"summary": "Disk /var full"})
        firing = await bob_inbox.next(timeout=30)
        assert firing.body.startswith("*[FIRING:1]* DiskFull"), firing.body
        for _ in range(200):  # remembered once the server acknowledged the message
            if await gateway.lasting.kv.keys(NAMESPACE):
                break
            await asyncio.sleep(0.05)

        hers = await mallory_inbox.next(timeout=30)
        mallory_inbox.send(bot.jid, "silence 2h", extra=reply_to(hers.id, hers.sender))
        assert (await mallory_inbox.next(timeout=20)).body == REFUSED
        bob_inbox.send(bot.jid, "silence 2h deploy", extra=reply_to(firing.id,
                                                                     firing.sender))
        answer = (await bob_inbox.next(timeout=20)).body
        assert answer.startswith("Silenced until"), answer
        [silence] = await asyncio.to_thread(alertmanager.api, "GET", "/api/v2/silences")
        assert silence["id"] in answer and silence["createdBy"] == bob.jid
        assert silence["comment"] == "deploy"

        bob_inbox.send(bot.jid, "thanks")  # not an action: the webhook's
        [delivery] = await endpoint.wait_delivered(1)
        assert delivery.json["body"] == "thanks" and len(endpoint.tries) == 1
    finally:
        await endpoint.stop()
