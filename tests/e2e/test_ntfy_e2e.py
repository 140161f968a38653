"""ntfy publishing end to end: the real Prosody, real receiving clients, the exact replies.

Topics here are the receivers' localparts, or ``[topics]`` entries naming rooms and users.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.helpers import (
    Account,
    AccountFactory,
    Client,
    GatewayFactory,
    ReceiverFactory,
    Reply,
    basic,
)
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.service import Gateway

JSON = "application/json"
REPLY_KEYS = {"id", "time", "event", "topic", "message"}
_rooms = itertools.count()


async def publish(http: Client, gateway: Gateway, method: str, path: str,
                  data: bytes | str | None = None, *, sender: Account | None = None,
                  headers: dict[str, str] | None = None) -> Reply:
    all_headers = dict(headers or {})
    if sender is not None:
        all_headers["Authorization"] = basic(sender.jid, sender.password)
    return await http.request(method, gateway.url + path, data=data, headers=all_headers)


def auth_param(who: Account, password: str | None = None) -> str:
    header = basic(who.jid, password if password is not None else who.password)
    return base64.urlsafe_b64encode(header.encode()).decode().rstrip("=")


async def test_json_at_the_root(gateway: Gateway, http: Client, account: AccountFactory,
                                receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    doc = {"topic": bob.local, "message": "Disk space is low at 5.1 GB",
           "title": "Low disk space alert", "tags": ["warning", "cd"], "priority": 4,
           "attach": "https://filesrv.lan/space.jpg", "filename": "diskspace.jpg",
           "click": "https://homecamera.lan/xasds1h2xsSsa/",
           "actions": [{"action": "view", "label": "Admin panel",
                        "url": "https://filesrv.lan/admin"}]}
    reply = await publish(http, gateway, "POST", "/", json.dumps(doc), sender=alice,
                          headers={"Content-Type": JSON})
    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"].startswith(JSON)
    body = reply.json
    action_id = body["actions"][0].pop("id")
    assert len(action_id) == 10 and isinstance(body.pop("time"), int)
    assert body == {
        "id": body["id"], "event": "message", "topic": bob.local,
        "title": "Low disk space alert", "message": "Disk space is low at 5.1 GB",
        "priority": 4, "tags": ["warning", "cd"],
        "click": "https://homecamera.lan/xasds1h2xsSsa/",
        "actions": [{"action": "view", "label": "Admin panel", "clear": False,
                     "url": "https://filesrv.lan/admin"}],
        "attachment": {"name": "diskspace.jpg", "url": "https://filesrv.lan/space.jpg"}}
    got = await inbox.next()
    assert (got.sender.split("/")[0], got.type, got.id, got.subject) == (
        alice.jid, "chat", body["id"], "Low disk space alert")
    assert got.body == ("\u2757 \u26a0\ufe0f \U0001f4bf *Low disk space alert*\n"
                        "Disk space is low at 5.1 GB\n\n"
                        "\U0001f517 https://homecamera.lan/xasds1h2xsSsa/\n"
                        "Admin panel: https://filesrv.lan/admin\n"
                        "\U0001f4ce diskspace.jpg: https://filesrv.lan/space.jpg")
    assert "<url>https://filesrv.lan/space.jpg</url>" in got.xml  # XEP-0066


async def test_topic_path_with_headers_and_with_query_parameters(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    headers = {"X-Title": "Deploy", "Prio": "high", "ta": "white_check_mark,prod",
               "X-Markdown": "yes", "Content-Type": "application/x-www-form-urlencoded"}
    reply = await publish(http, gateway, "PUT", f"/{bob.local}", "**v2** is _live_",
                          sender=alice, headers=headers)
    assert reply.status == 200, reply.text
    assert set(reply.json) == REPLY_KEYS | {"title", "priority", "tags", "content_type"}
    assert reply.json["content_type"] == "text/markdown"
    got = await inbox.next()
    assert got.body == "\u2757 \u2705 *Deploy*\n*v2* is _live_\n\nTags: prod"
    assert got.subject == "Deploy" and got.id == reply.json["id"]
    query = urlencode({"title": "Nightly", "message": "all green", "tags": "tada"})
    reply = await publish(http, gateway, "POST", f"/{bob.local}?{query}", sender=alice)
    assert reply.status == 200, reply.text
    assert (reply.json["title"], reply.json["message"]) == ("Nightly", "all green")
    assert (await inbox.next()).body == "\U0001f389 *Nightly*\nall green"


async def test_webhook_forms_and_the_auth_parameter(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    reply = await publish(http, gateway, "GET",
                          f"/{bob.local}/publish?message=Webhook+triggered&priority=high"
                          f"&tags=warning,skull&auth={auth_param(alice)}")
    assert reply.status == 200, reply.text
    assert reply.json["message"] == "Webhook triggered"
    assert (await inbox.next()).body == "\u2757 \u26a0\ufe0f \U0001f480 Webhook triggered"
    reply = await publish(http, gateway, "POST", f"/{bob.local}/trigger", sender=alice)
    assert reply.status == 200 and reply.json["message"] == "triggered"
    assert (await inbox.next()).body == "triggered"
    # standard alphabet, padded, under ntfy's other name
    header = basic(alice.jid, alice.password)
    padded = base64.b64encode(header.encode()).decode()
    reply = await publish(http, gateway, "GET", f"/{bob.local}/send?m=hi&"
                          + urlencode({"authorization": padded}))
    assert reply.status == 200, reply.text
    assert (await inbox.next()).body == "hi"


async def test_topics_alias_to_a_room_and_several_users(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer, tmp_path: Path) -> None:
    owner = await receiver(account("owner"))
    room = f"ops{next(_rooms)}@{prosody.muc_domain}"
    await owner.create_room(room, "owner", subject="Ops room", changesubject="1")
    bob, carol = account("bob"), account("carol")
    inboxes = [await receiver(bob), await receiver(carol)]
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(f'[topics]\nops = ["{room}", "{bob.jid}", "{carol.jid}"]\n'
                           f'lost = ["{bob.jid}", "nosuch{next(_rooms)}@{prosody.muc_domain}"]\n')
    gateway = await start_gateway(config_file=config_file)
    alice = account("alice")
    reply = await publish(http, gateway, "POST", "/ops", "db1: /var at 91%", sender=alice,
                          headers={"Title": "Disk full"})
    assert reply.status == 200, reply.text
    assert set(reply.json) == REPLY_KEYS | {"title"} and reply.json["topic"] == "ops"
    text = "*Disk full*\ndb1: /var at 91%"
    in_room = await owner.next()
    assert (in_room.sender, in_room.type, in_room.body) == (
        f"{room}/{alice.local}", "groupchat", text)
    assert "<subject" not in in_room.xml  # a room keeps its own subject
    for inbox in inboxes:
        got = await inbox.next()
        assert (got.type, got.body, got.subject, got.id) == ("chat", text, "Disk full",
                                                             reply.json["id"])
    # Part of a topic failing: the first failure's status, and one result per recipient.
    reply = await publish(http, gateway, "POST", "/lost", "x", sender=alice)
    assert reply.status == 404, reply.text
    body = reply.json
    assert (body["error"], body["http"], body["code"]) == ("room_not_found", 404, 40400)
    assert [result["status"] for result in body["results"]] == [200, 404]
    assert body["results"][0]["to"] == bob.jid
    assert (await inboxes[0].next()).body == "x"


async def refused(http: Client, gateway: Gateway, method: str, path: str,
                  data: bytes | str | None, sender: Account | None,
                  headers: dict[str, str] | None = None) -> dict[str, Any]:
    reply = await publish(http, gateway, method, path, data, sender=sender,
                          headers=headers)
    assert reply.status >= 400, reply.text
    body = reply.json
    assert body["http"] == reply.status and set(body) == {"error", "message", "http",
                                                           "code"}, body
    return {"status": reply.status, **body, "headers": reply.headers}


@pytest.mark.parametrize(("method", "path", "data", "headers", "status", "error", "code"), [
    ("POST", "/{bob}", "x", {"X-Delay": "30min"}, 400, "unsupported_field", 40050),
    ("POST", "/{bob}?email=a@example.org", "x", {}, 400, "unsupported_field", 40050),
    ("PUT", "/{bob}", "x", {"Call": "yes"}, 400, "unsupported_field", 40050),
    ("POST", "/", '{"topic": "t", "filename": "a.txt"}', {}, 400, "attachment_not_supported",
     40053),  # a body with a file name is a file (test_files_e2e.py); JSON carries none
    ("POST", "/{bob}", "x", {"Priority": "7"}, 400, "invalid_priority", 40007),
    ("POST", "/{bob}", "bell\x07", {}, 400, "invalid_character", 40051),
    ("POST", "/{bob}", "x", {"Attach": "ftp://x.example/a"}, 400, "invalid_attach", 40013),
    ("POST", "/", '{"topic": "a b", "message": "x"}', {}, 400, "invalid_topic", 40009),
    ("POST", "/", '{"topic": "healthz"}', {}, 400, "topic_reserved", 40010),
    ("POST", "/", '["not", "an object"]', {}, 400, "invalid_json", 40017),
    ("GET", "/{bob}", None, {}, 405, "method_not_allowed", 40501),
])
async def test_refusals_send_nothing(gateway: Gateway, http: Client, account: AccountFactory,
                                     receiver: ReceiverFactory, method: str, path: str,
                                     data: str | bytes | None, headers: dict[str, str],
                                     status: int, error: str, code: int) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    got = await refused(http, gateway, method, path.format(bob=bob.local), data, alice,
                        headers)
    assert (got["status"], got["error"], got["code"]) == (status, error, code)
    reply = await publish(http, gateway, "POST", f"/{bob.local}", "after", sender=alice)
    assert reply.status == 200
    assert (await inbox.next()).body == "after"  # nothing refused arrived before it


async def test_credentials_refused(gateway: Gateway, http: Client,
                                  account: AccountFactory) -> None:
    alice, bob = account("alice"), account("bob")
    got = await refused(http, gateway, "POST", f"/{bob.local}", "x", None)
    assert (got["status"], got["code"]) == (401, 40101)
    assert got["headers"]["WWW-Authenticate"].startswith("Basic realm=")
    wrong = Account(alice.jid, "wrong password")
    got = await refused(http, gateway, "POST", f"/{bob.local}", "x", wrong)
    assert (got["status"], got["error"], got["code"]) == (401, "invalid_credentials", 40101)
    got = await refused(http, gateway, "POST",
                        f"/{bob.local}?auth={auth_param(alice, 'wrong')}", "x", None)
    assert (got["status"], got["error"]) == (401, "invalid_credentials")
    got = await refused(http, gateway, "POST", f"/{bob.local}?auth=bm9wZQ", "x", None)
    assert (got["status"], got["error"], got["code"]) == (401, "invalid_auth_param", 40150)
    stranger = Account("mallory@elsewhere.example", "pw")
    got = await refused(http, gateway, "POST", f"/{bob.local}", "x", stranger)
    assert (got["status"], got["error"], got["code"]) == (403, "domain_not_served", 40350)


async def test_reserved_names_are_the_gateways(gateway: Gateway, http: Client,
                                               account: AccountFactory) -> None:
    alice = account("alice")
    for path in ("/healthz", "/msg", "/metrics"):
        reply = await publish(http, gateway, "PUT", path, "x", sender=alice)
        assert reply.status == 405 and set(reply.json) == {"error", "message"}, path
    reply = await publish(http, gateway, "POST", "/msg", "x", sender=alice,
                          headers={"Content-Type": "text/plain"})
    assert reply.status == 422 and reply.json["error"] == "missing_recipient"


async def test_the_auth_parameter_never_reaches_the_logs(
        caplog: pytest.LogCaptureFixture, gateway: Gateway, http: Client,
        account: AccountFactory, receiver: ReceiverFactory) -> None:
    caplog.set_level(logging.INFO)  # the default log_level
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    for password in (alice.password, "a wrong one"):
        param = auth_param(alice, password)
        reply = await publish(http, gateway, "POST", f"/{bob.local}?auth={param}", "hi")
        assert reply.status in (200, 401)
        assert param not in caplog.text and password not in caplog.text
    assert (await inbox.next()).body == "hi"


async def test_requests_shaped_as_the_tools_send_them(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    """Uptime Kuma, Healthchecks.io and Apprise post JSON to the server URL; Apprise adds
    headers beside it, Healthchecks.io can only carry credentials in the URL; shoutrrr
    posts the raw text to the topic with headers."""
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    kuma = {"topic": bob.local, "message": "[web] timeout of 48000ms exceeded", "priority": 5,
            "title": "web Down [Uptime-Kuma]", "tags": ["red_circle", "env: prod"],
            "actions": [{"action": "view", "label": "Open web",
                         "url": "https://web.example.org"}],
            "icon": "https://kuma.example.org/icon.png"}
    reply = await publish(http, gateway, "POST", "/", json.dumps(kuma), sender=alice,
                          headers={"Content-Type": JSON})
    assert reply.status == 200, reply.text
    assert reply.json["icon"] == kuma["icon"]
    assert (await inbox.next()).body == (
        "\u203c\ufe0f \U0001f534 *web Down [Uptime-Kuma]*\n[web] timeout of 48000ms exceeded"
        "\n\nOpen web: https://web.example.org\nTags: env: prod")
    checks = {"topic": bob.local, "priority": 3, "title": "backup is DOWN",
              "message": 'The check "backup" is DOWN (success signal did not arrive on time).',
              "tags": ["red_circle"], "actions": [{"action": "view",
                                                   "label": "View on Healthchecks.io",
                                                   "url": "https://hc.example.org/c/1/"}]}
    reply = await publish(http, gateway, "POST", f"/?auth={auth_param(alice)}",
                          json.dumps(checks), headers={"Content-Type": JSON})
    assert reply.status == 200, reply.text
    assert (await inbox.next()).body.startswith("\U0001f534 *backup is DOWN*\nThe check")
    user = Account(alice.local, alice.password)  # user:password means the first domain
    reply = await publish(http, gateway, "POST", "/",
                          json.dumps({"topic": bob.local, "title": "apprise", "message": "hi"}),
                          sender=user, headers={"Content-Type": JSON, "X-Priority": "high",
                                                "X-Tags": "tada,ci", "User-Agent": "Apprise"})
    assert reply.status == 200, reply.text
    assert (await inbox.next()).body == "\u2757 \U0001f389 *apprise*\nhi\n\nTags: ci"
    # shoutrrr: the raw text to /<topic>, no Content-Type, its defaults as headers
    reply = await publish(http, gateway, "POST", f"/{bob.local}", "Watchtower updated web",
                          sender=alice, headers={"Title": "Watchtower", "Priority": "default",
                                                 "Cache": "no", "Firebase": "no",
                                                 "User-Agent": "shoutrrr/0.8"})
    assert reply.status == 200 and reply.json["priority"] == 3, reply.text
    assert (await inbox.next()).body == "*Watchtower*\nWatchtower updated web"
