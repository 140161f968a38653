"""Group chats end to end: the gateway joins existing rooms, posts, and says why it cannot."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory
from tests.helpers.faults import eventually, nothing_else_arrived
from tests.helpers.rooms import new_room, owned_room
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.model import Sender
from xmpp_post.service import Gateway
from xmpp_post.testing import ManualClock
from xmpp_post.xmpp import rooms as rooms_module
from xmpp_post.xmpp.rooms import RoomMemberships
from xmpp_post.xmpp.session import XmppSession

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


async def test_occupant_receives_the_gateways_groupchat_message(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer) -> None:
    room, owner = await owned_room(prosody, account, receiver)
    alice = account("alice")
    # A room JID is recognised by its service's disco#info: no type needed.
    reply = await http.post(gateway, f"/msg/{room}", "deploy finished", sender=alice)
    assert reply.status == 201, reply.text
    body = reply.json
    assert body["type"] == "groupchat" and body["to"] == room and body["nick"] == alice.local
    got = await owner.next()
    assert (got.sender, got.type, got.body) == (f"{room}/{alice.local}", "groupchat",
                                               "deploy finished")
    assert got.id == body["id"]
    # The session stays in the room: a second message does not join again.
    doc = json.dumps({"to": room, "type": "groupchat", "body": "second", "id": "note-2"})
    reply = await http.post(gateway, "/msg", doc, sender=alice, content_type=JSON)
    assert reply.status == 201, reply.text
    assert reply.json["id"] == "note-2"
    assert (await owner.next()).body == "second"
    joins = [p for p in owner.occupant_presences(room) if p == (alice.local, "available")]
    assert len(joins) == 1, owner.presences


async def test_nick_field_default_setting_and_conflict_suffix(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer) -> None:
    room, owner = await owned_room(prosody, account, receiver)
    gateway = await start_gateway(muc_nick="notifier")
    alice, bob = account("alice"), account("bob")
    reply = await http.post(gateway, f"/msg/{room}", "from the default nick", sender=alice)
    assert reply.status == 201, reply.text
    assert reply.json["nick"] == "notifier"
    assert (await owner.next()).sender == f"{room}/notifier"
    # Someone else already holds "notifier": bob's session takes "notifier-2".
    reply = await http.post(gateway, f"/msg/{room}", "second notifier", sender=bob)
    assert reply.status == 201, reply.text
    assert reply.json["nick"] == "notifier-2"
    assert (await owner.next()).sender == f"{room}/notifier-2"
    # A nick in the request wins over the setting.
    form = urlencode({"to": room, "nick": "CI Bot", "body": "with my own nick"})
    reply = await http.post(gateway, "/msg", form, sender=bob, content_type=FORM)
    assert reply.status == 201, reply.text
    assert reply.json["nick"] == "CI Bot"
    assert (await owner.next()).sender == f"{room}/CI Bot"


async def test_a_room_that_does_not_exist_is_404_and_is_not_created(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer) -> None:
    alice = account("alice")
    room = new_room(prosody, "nowhere")
    for _ in range(2):
        reply = await http.post(gateway, f"/msg/{room}", "anyone?", sender=alice)
        assert reply.status == 404, reply.text
        assert reply.json["error"] == "room_not_found"
        assert room in reply.json["message"]
    # Still no such room: a real client that joins it is the one who creates it.
    probe = await receiver(account("probe"))
    assert "201" in await probe.join_room(room, "probe")  # 201: the join created it


async def test_groupchat_to_a_user_is_404(gateway: Gateway, http: Client,
                                          account: AccountFactory) -> None:
    alice, bob = account("alice"), account("bob")
    doc = json.dumps({"to": bob.jid, "type": "groupchat", "body": "x"})
    reply = await http.post(gateway, "/msg", doc, sender=alice, content_type=JSON)
    assert reply.status == 404, reply.text
    assert reply.json["error"] == "room_not_found"


async def test_members_only_room_is_403_until_the_sender_is_a_member(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer) -> None:
    room, owner = await owned_room(prosody, account, receiver, membersonly="1")
    alice = account("alice")
    reply = await http.post(gateway, f"/msg/{room}", "let me in", sender=alice)
    assert reply.status == 403, reply.text
    assert reply.json["error"] == "room_members_only"
    assert "registration-required" in reply.json["message"]
    await owner.set_affiliation(room, alice.jid, "member")
    reply = await http.post(gateway, f"/msg/{room}", "now a member", sender=alice)
    assert reply.status == 201, reply.text
    assert (await owner.next()).body == "now a member"


async def test_banned_sender_is_403(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer) -> None:
    room, owner = await owned_room(prosody, account, receiver)
    mallory = account("mallory")
    await owner.set_affiliation(room, mallory.jid, "outcast", reason="spam")
    reply = await http.post(gateway, f"/msg/{room}", "hello again", sender=mallory)
    assert reply.status == 403, reply.text
    assert reply.json["error"] == "room_banned"
    assert "forbidden" in reply.json["message"]
    await nothing_else_arrived(http, gateway, account("carol"), owner, room)


async def test_password_protected_room(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer) -> None:
    room, owner = await owned_room(prosody, account, receiver, passwordprotectedroom="1",
                                   roomsecret="s3cret")
    alice = account("alice")
    for password in (None, "wrong"):
        fields = {"to": room, "body": "knock knock"}
        if password:
            fields["room_password"] = password
        reply = await http.post(gateway, "/msg", json.dumps(fields), sender=alice,
                                content_type=JSON)
        assert reply.status == 403, reply.text
        assert reply.json["error"] == "room_password"
        assert "not-authorized" in reply.json["message"]
    doc = json.dumps({"to": room, "body": "open sesame", "room_password": "s3cret"})
    reply = await http.post(gateway, "/msg", doc, sender=alice, content_type=JSON)
    assert reply.status == 201, reply.text
    assert (await owner.next()).body == "open sesame"


async def test_a_visitor_may_not_speak_in_a_moderated_room(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer) -> None:
    room, owner = await owned_room(prosody, account, receiver, moderatedroom="1")
    alice = account("alice")
    reply = await http.post(gateway, f"/msg/{room}", "can you hear me?", sender=alice)
    assert reply.status == 403, reply.text  # the room refused it: never a silent 201
    assert reply.json["error"] == "room_refused_message"
    carol = account("carol")
    await owner.set_affiliation(room, carol.jid, "member")  # members have a voice
    await nothing_else_arrived(http, gateway, carol, owner, room)


async def test_the_session_leaves_its_rooms_when_it_closes(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer) -> None:
    room, owner = await owned_room(prosody, account, receiver)
    gateway = await start_gateway()
    alice = account("alice")
    assert (await http.post(gateway, f"/msg/{room}", "bye soon", sender=alice)).status == 201
    await owner.next()
    await gateway.stop()
    assert owner.occupant_presences(room)[-1] == (alice.local, "unavailable")


async def test_several_recipients_with_a_room_that_refuses(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer) -> None:
    open_room, owner = await owned_room(prosody, account, receiver)
    closed_room, _ = await owned_room(prosody, account, receiver, membersonly="1")
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    doc = json.dumps({"to": [bob.jid, open_room, closed_room], "body": "release 1.2 is out"})
    reply = await http.post(gateway, "/msg", doc, sender=alice, content_type=JSON)
    assert reply.status == 207, reply.text
    results = reply.json["results"]
    assert [r["to"] for r in results] == [bob.jid, open_room, closed_room]
    assert [r["status"] for r in results] == [201, 201, 403]
    assert results[0]["type"] == "chat" and results[1]["type"] == "groupchat"
    assert results[2]["error"] == "room_members_only" and results[2]["message"]
    assert (await inbox.next()).body == "release 1.2 is out"
    assert (await owner.next()).body == "release 1.2 is out"


async def test_fields_reach_the_room(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer) -> None:
    room, owner = await owned_room(prosody, account, receiver)
    alice = account("alice")
    doc = json.dumps({"to": room, "body": "nightly build", "subject": "CI",
                      "oob_url": "https://ci.example.org/n/7", "lang": "en", "id": "n-7"})
    reply = await http.post(gateway, "/msg", doc, sender=alice, content_type=JSON)
    assert reply.status == 201, reply.text
    got = await owner.next()
    assert got.id == "n-7" and got.subject == "CI"
    assert got.body == "nightly build\nhttps://ci.example.org/n/7"
    assert "<url>https://ci.example.org/n/7</url>" in got.xml
    reply = await http.post(gateway, f"/msg/{room}?receipt=1", "no receipts here",
                            sender=alice)
    assert reply.status == 400 and reply.json["error"] == "invalid_receipt"


async def test_a_room_created_by_the_join_is_destroyed_and_404(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # The race the disco#info check cannot close: the room vanishes between the check
    # and the join. Skipping the check makes the join itself create the room.
    async def exists(self: RoomMemberships, room: str) -> None:
        return None

    monkeypatch.setattr(RoomMemberships, "_check_exists", exists)
    alice = account("alice")
    room = new_room(prosody, "vanished")
    reply = await http.post(gateway, f"/msg/{room}", "anyone?", sender=alice)
    assert reply.status == 404, reply.text
    assert reply.json["error"] == "room_not_found"
    assert "destroying it again" in caplog.text and "could not destroy" not in caplog.text
    probe = await receiver(account("probe"))
    assert "201" in await probe.join_room(room, "probe")  # destroyed: joining creates it anew


async def test_a_session_stays_in_a_bounded_number_of_rooms(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rooms_module, "MAX_ROOMS", 2)
    clock = ManualClock()
    gateway = await start_gateway(clock=clock, idle_timeout="7200")
    owner = await receiver(account("owner"))
    names = [new_room(prosody) for _ in range(3)]
    for room in names:
        await owner.create_room(room, "owner")
    alice = account("alice")
    for room in names[:2]:
        assert (await http.post(gateway, f"/msg/{room}", "hi", sender=alice)).status == 201
    clock.advance(3600)  # both rooms have long been quiet
    assert (await http.post(gateway, f"/msg/{names[2]}", "hi", sender=alice)).status == 201
    session = await gateway.pool.session_for(Sender(alice.jid, alice.password))
    assert isinstance(session, XmppSession) and gateway.pool.opened_total == 1
    assert set(session.rooms) == {names[1], names[2]}  # it left the least recently used
    # The owner sees the gateway leave the least recently used room.
    await eventually(lambda: (alice.local, "unavailable") in owner.occupant_presences(names[0]))
