"""The built-in alert actions against a real Alertmanager and the real Prosody.

A real Alertmanager (``lab.alertmanager``) notifies the gateway's webhook URL, whose
template is the built-in ``alertmanager``, as the bot's configured account; the bot's
memory (``Remember``, wired here as ``service`` will) keeps the group's labels under the
message's id. Then ``AlertActions.answer`` gets a message replying to that id (XEP-0461)
as the bot's runtime will hand it: the silence it makes is in Alertmanager's API v2 with
exactly the group's labels as matchers and the replier as ``createdBy``, and the alert
is silenced; a stranger's reply is refused and changes nothing; ``unsilence`` expires
the silence; ``alerts`` lists what fires.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import AccountFactory, ReceiverFactory
from tests.helpers.alerts import LABELS, notifying
from tests.helpers.grants import gateway_from, secret_file, toml
from xmpp_post.auth.webhook_urls import new_secret
from xmpp_post.bots.alert_actions import REFUSED, AlertActions
from xmpp_post.bots.alert_memory import AlertMemory, Remember
from xmpp_post.http.context import SENT_WATCHERS, TemplatedSent
from xmpp_post.incoming import Incoming, ReplyTo
from xmpp_post.lab.alertmanager import AlertmanagerServer
from xmpp_post.lab.prosody import ProsodyServer


async def unsilenced(server: AlertmanagerServer) -> list[dict[str, Any]]:
    return await asyncio.to_thread(
        server.api, "GET", "/api/v2/alerts?active=true&silenced=false")


async def test_a_reply_silences_the_alert_and_unsilence_expires_it(
        prosody: ProsodyServer, account: AccountFactory, receiver: ReceiverFactory,
        alertmanager: AlertmanagerServer, tmp_path: Path) -> None:
    bot, bob, mallory = account("oncall"), account("bob"), account("mallory")
    bob_inbox = await receiver(bob)
    secret = new_secret()
    gateway_file = tmp_path / "gw.toml"
    password = secret_file(tmp_path, "bot.password", bot.password)
    gateway_file.write_text(toml({
        "accounts": {bot.jid: {"password_file": str(password)}},
        "webhooks": {"alertmanager": {
            "verify": "url", "sha256": hashlib.sha256(secret.encode()).hexdigest(),
            "account": bot.jid, "to": [bob.jid], "template": "alertmanager"}}}))
    async with gateway_from(prosody, gateway_file) as gateway, \
            aiohttp.ClientSession() as http:
        remember = Remember(AlertMemory(gateway.lasting.kv), frozenset({bot.jid}))
        remembered = asyncio.Event()

        async def watch(sent: TemplatedSent) -> None:
            await remember(sent)
            remembered.set()

        gateway.app[SENT_WATCHERS].append(watch)
        await asyncio.to_thread(alertmanager.start, notifying(f"{gateway.url}/hooks/{secret}"))
        await asyncio.to_thread(alertmanager.push, LABELS, {"summary": "Disk /var full"})
        firing = await bob_inbox.next(timeout=30)
        assert firing.body.startswith("*[FIRING:1]* DiskFull"), firing.body
        # Bob may read it before the gateway has the server's ack and remembers it.
        await asyncio.wait_for(remembered.wait(), 10)

        async def no_members(_room: str) -> frozenset[str]:
            return frozenset()

        actions = AlertActions(account=bot.jid, alertmanager_url=alertmanager.url,
                               allow=None, store=gateway.lasting.kv, http=http,
                               room_members=no_members)

        def reply(sender: str, body: str) -> Incoming:
            return Incoming(id="r1", type="chat", sender=f"{sender}/phone", to=bot.jid,
                            body=f"> {firing.body.splitlines()[0]}\n{body}",
                            reply_to=ReplyTo(firing.id, bot.jid))

        # A stranger is refused, and Alertmanager is unchanged.
        assert await actions.answer(reply(mallory.jid, "silence 2h")) == REFUSED
        assert await asyncio.to_thread(alertmanager.api, "GET", "/api/v2/silences") == []

        answer = await actions.answer(reply(bob.jid, "silence 2h deploy in progress"))
        assert answer is not None and answer.startswith("Silenced until"), answer
        [silence] = await asyncio.to_thread(alertmanager.api, "GET", "/api/v2/silences")
        assert silence["id"] in answer
        assert silence["status"]["state"] == "active"
        assert silence["createdBy"] == bob.jid
        assert silence["comment"] == "deploy in progress"
        assert sorted((m["name"], m["value"], m["isRegex"], m.get("isEqual", True))
                      for m in silence["matchers"]) == [
            (name, value, False, True) for name, value in sorted(LABELS.items())]
        assert await unsilenced(alertmanager) == []
        listed = await actions.answer(Incoming(id="r2", type="chat", sender=bob.jid,
                                               to=bot.jid, body="alerts"))
        assert listed == "Nothing is firing (unsilenced)."

        # Silencing again replaces the silence: one of the bot's per group.
        again = await actions.answer(reply(bob.jid, "silence 4h"))
        assert again is not None and f"replacing silence {silence['id']}" in again, again
        silences = await asyncio.to_thread(alertmanager.api, "GET", "/api/v2/silences")
        states = {item["id"]: item["status"]["state"] for item in silences}
        assert states[silence["id"]] == "expired" and len(states) == 2
        [latest] = [key for key, state in states.items() if state == "active"]
        assert latest in again

        answer = await actions.answer(reply(bob.jid, "unsilence"))
        assert answer is not None and "expired" in answer, answer
        silences = await asyncio.to_thread(alertmanager.api, "GET", "/api/v2/silences")
        assert [item["status"]["state"] for item in silences] == ["expired", "expired"]
        deadline = time.monotonic() + 10
        while not (firing_now := await unsilenced(alertmanager)):
            assert time.monotonic() < deadline, "the alert stayed silenced"
            await asyncio.sleep(0.05)
        assert [alert["labels"] for alert in firing_now] == [LABELS]
        listed = await actions.answer(Incoming(id="r3", type="chat", sender=bob.jid,
                                               to=bot.jid, body="alerts"))
        assert listed == ("Firing: 1\n• DiskFull — instance=db-1, severity=critical — "
                          "Disk /var full")
