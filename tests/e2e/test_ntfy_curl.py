"""ntfy's own documented curl commands, pointed at the gateway: the ntfy server URL is
the gateway's, the topic a receiver's localpart, and ``-u user:password`` the sender."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from typing import Any

import pytest

from tests.helpers import AccountFactory, ReceiverFactory
from xmpp_post.service import Gateway


async def curl(*args: str) -> Any:
    """Run curl; return the JSON it printed (failing on an HTTP error status)."""
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed: run scripts/setup")
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--fail-with-body", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, (out, err)
    return json.loads(out)


async def test_ntfys_curl_examples(gateway: Gateway, account: AccountFactory,
                                   receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    user = f"{alice.jid}:{alice.password}"
    topic = f"{gateway.url}/{bob.local}"

    reply = await curl("-u", user, "-d", "Backup successful 😀", topic)
    assert reply["message"] == "Backup successful 😀" and reply["event"] == "message"
    assert (await inbox.next()).body == "Backup successful 😀"

    reply = await curl("-u", user,
                       "-H", "Title: Unauthorized access detected",
                       "-H", "Priority: urgent",
                       "-H", "Tags: warning,skull",
                       "-d", "Remote access to phils-laptop detected. Act right away.",
                       topic)
    assert (reply["priority"], reply["tags"]) == (5, ["warning", "skull"])
    got = await inbox.next()
    assert got.subject == "Unauthorized access detected"
    assert got.body == ("\u203c\ufe0f \u26a0\ufe0f \U0001f480 *Unauthorized access detected*"
                        "\nRemote access to phils-laptop detected. Act right away.")

    reply = await curl("-u", user, "-H", "X-Title: Dogs are better than cats",
                       "-d", "Oh my ...", topic)
    assert (await inbox.next()).body == "*Dogs are better than cats*\nOh my ..."

    reply = await curl("-u", user, f"{topic}/trigger")
    assert reply["message"] == "triggered"
    assert (await inbox.next()).body == "triggered"

    reply = await curl(
        "-u", user,
        f"{topic}/publish?message=Webhook+triggered&priority=high&tags=warning,skull")
    assert (await inbox.next()).body == "\u2757 \u26a0\ufe0f \U0001f480 Webhook triggered"

    reply = await curl("-u", user, gateway.url, "-d", json.dumps({
        "topic": bob.local, "message": "Disk space is low at 5.1 GB",
        "title": "Low disk space alert", "tags": ["warning", "cd"], "priority": 4,
        "attach": "https://filesrv.lan/space.jpg", "filename": "diskspace.jpg",
        "click": "https://homecamera.lan/xasds1h2xsSsa/",
        "actions": [{"action": "view", "label": "Admin panel",
                     "url": "https://filesrv.lan/admin"}]}))
    assert reply["attachment"] == {"name": "diskspace.jpg",
                                   "url": "https://filesrv.lan/space.jpg"}
    assert (await inbox.next()).body.startswith("\u2757 \u26a0\ufe0f \U0001f4bf *Low disk")

    auth = base64.b64encode(f"Basic {base64.b64encode(user.encode()).decode()}".encode())
    reply = await curl("-d", "Look ma, with auth",
                       f"{topic}?auth={auth.decode().rstrip('=')}")
    assert (await inbox.next()).body == "Look ma, with auth"
