"""What a bot's session makes of a received stanza (``xmpp.bot_stanzas``): the message
handed on, or why it is skipped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from xmpp_post.incoming import ReplyTo
from xmpp_post.xmpp.bot_stanzas import (
    MAX_STANZA_ID,
    Rooms,
    archive_result,
    names_nick,
    occupant,
    read_message,
    unwrap_carbon,
)

OWN = "bot@example.org"
ROOM = "ops@conference.example.org"
ROOMS = Rooms({ROOM: "alerts"}, frozenset({ROOM}), {ROOM: {"carol": "carol@example.org"}})


def stanza(text: str) -> Any:
    return ET.fromstring(text.replace("<message ", "<message xmlns='jabber:client' ", 1))


def read(text: str, rooms: Rooms = ROOMS, **options: Any) -> Any:
    return read_message(stanza(text), OWN, rooms, **options)


def test_a_chat_message_with_every_part() -> None:
    got = read(
        f"<message from='alice@example.org/phone' to='{OWN}/x' type='chat' id='m1'>"
        "<body>hello</body><subject>s</subject><thread>t</thread>"
        f"<stanza-id xmlns='urn:xmpp:sid:0' by='{OWN}' id='arch-1'/>"
        "<reply xmlns='urn:xmpp:reply:0' to='bot@example.org/x' id='prev'/>"
        "<x xmlns='jabber:x:oob'><url>https://e.org/f.png</url></x>"
        "<delay xmlns='urn:xmpp:delay' stamp='2026-12-07T10:00:00Z'/></message>")
    message = got.incoming
    assert got.archive_id == "arch-1" and message.id == "arch-1"
    assert (message.type, message.sender, message.to, message.body) == (
        "chat", "alice@example.org/phone", f"{OWN}/x", "hello")
    assert (message.subject, message.thread, message.room) == ("s", "t", None)
    assert message.reply_to == ReplyTo("prev", "bot@example.org/x")
    assert message.oob == ("https://e.org/f.png",) and message.time == "2026-12-07T10:00:00Z"


def test_a_stanza_id_by_someone_else_is_not_taken() -> None:
    got = read("<message from='alice@example.org/a' type='chat' id='m1'><body>x</body>"
               "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='forged'/>"
               "</message>")
    assert got.archive_id is None and got.incoming.id == "m1"
    assert read("<message from='alice@example.org/a'><body>x</body></message>"
                ).incoming.type == "normal"


@pytest.mark.parametrize(("text", "why"), [
    (f"<message from='{OWN}/other' type='chat'><body>mine</body></message>", "own"),
    ("<message from='alice@example.org/a' type='error'><body>x</body></message>", "error"),
    ("<message from='alice@example.org/a' type='headline'><body>x</body></message>", "type"),
    ("<message from='alice@example.org/a' type='chat'>"
     "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>", "no_body"),
    ("<message from='alice@example.org/a'><received xmlns='urn:xmpp:receipts' id='1'/>"
     "</message>", "no_body"),
    ("<message from='alice@example.org/a' type='chat'><body>[encrypted]</body>"
     "<encrypted xmlns='eu.siacs.conversations.axolotl'/></message>", "encrypted"),
    (f"<message from='{ROOM}/alerts' type='groupchat'><body>alerts: me</body></message>",
     "own"),
    (f"<message from='{ROOM}/carol' type='groupchat'><body>no name here</body></message>",
     "not_mentioned"),
    (f"<message from='{ROOM}/carol' type='groupchat'><body>alerts: old</body>"
     f"<delay xmlns='urn:xmpp:delay' from='{ROOM}' stamp='2020-01-01T00:00:00Z'/></message>",
     "history"),
    (f"<message from='{ROOM}' type='groupchat'><subject>topic</subject></message>", "own"),
    ("<message from='other@conference.example.org/x' type='groupchat'><body>alerts</body>"
     "</message>", "unjoined"),
])
def test_skipped(text: str, why: str) -> None:
    assert read(text).skipped == why


def test_room_messages_before_the_join_completes_are_history() -> None:
    early = Rooms({ROOM: "alerts"}, frozenset(), {})
    assert read(f"<message from='{ROOM}/carol' type='groupchat'><body>alerts: hi</body>"
                "</message>", early).skipped == "history"


def test_a_room_mention_with_the_rooms_stanza_id_and_the_real_jid() -> None:
    got = read(f"<message from='{ROOM}/carol' to='{OWN}/x' type='groupchat' id='c1'>"
               "<body>Alerts, silence it</body>"
               f"<stanza-id xmlns='urn:xmpp:sid:0' by='{ROOM}' id='room-7'/></message>")
    message = got.incoming
    assert (message.id, message.room, message.nick, message.real_jid) == (
        "room-7", ROOM, "carol", "carol@example.org")
    assert got.archive_id is None and got.stanza_id == "room-7"
    assert read(f"<message from='{ROOM}/carol' type='groupchat'><body>anything</body>"
                "</message>", mentions_only=False).incoming.body == "anything"


def test_a_stanza_id_beyond_its_bound_is_not_kept() -> None:
    long = "x" * (MAX_STANZA_ID + 1)
    got = read(f"<message from='alice@example.org/a' type='chat' id='m1'><body>x</body>"
               f"<stanza-id xmlns='urn:xmpp:sid:0' by='{OWN}' id='{long}'/></message>")
    assert (got.archive_id, got.stanza_id, got.incoming.id) == (None, None, "m1")
    fits = read(f"<message from='alice@example.org/a' type='chat'><body>x</body>"
                f"<stanza-id xmlns='urn:xmpp:sid:0' by='{OWN}' id='{long[1:]}'/></message>")
    assert fits.archive_id == fits.stanza_id == long[1:]
    result = (f"<message from='{OWN}'><result xmlns='urn:xmpp:mam:2' queryid='q' id='{{id}}'>"
              "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
              "from='alice@example.org/a'><body>b</body></message></forwarded></result>"
              "</message>")
    assert archive_result(stanza(result.format(id=long)), OWN) is None


def test_a_decrypted_body_replaces_the_placeholder() -> None:
    got = read("<message from='alice@example.org/a' type='chat'><body>[encrypted]</body>"
               "<encrypted xmlns='urn:xmpp:omemo:2'/></message>", body="secret")
    assert got.incoming.body == "secret"


@pytest.mark.parametrize(("body", "named"), [
    ("alerts: hi", True), ("hi Alerts", True), ("@alerts!", True), ("alertsbot", False),
    ("myalerts", False), ("", False), ("al erts", False), ("x alerts2 alerts.", True)])
def test_names_nick(body: str, named: bool) -> None:
    assert names_nick(body, "alerts") is named


def test_archive_results_only_from_our_own_archive() -> None:
    text = ("<message from='{sender}'><result xmlns='urn:xmpp:mam:2' queryid='q' id='a9'>"
            "<forwarded xmlns='urn:xmpp:forward:0'>"
            "<delay xmlns='urn:xmpp:delay' stamp='2026-12-07T09:00:00Z'/>"
            "<message xmlns='jabber:client' from='alice@example.org/a' type='chat'>"
            "<body>while away</body></message></forwarded></result></message>")
    result = archive_result(stanza(text.format(sender=OWN)), OWN)
    assert result is not None and (result.queryid, result.id, result.stamp) == (
        "q", "a9", "2026-12-07T09:00:00Z")
    unwrapped = read_message(result.message, OWN, ROOMS).incoming
    assert unwrapped is not None and unwrapped.body == "while away"
    assert archive_result(stanza(text.format(sender="mallory@example.org")), OWN) is None


def test_occupants_presences() -> None:
    seen = occupant(ET.fromstring(
        f"<presence xmlns='jabber:client' from='{ROOM}/carol'>"
        "<x xmlns='http://jabber.org/protocol/muc#user'>"
        "<item jid='carol@example.org/laptop' affiliation='member' role='participant'/>"
        "<status code='110'/></x></presence>"))
    assert seen is not None and (seen.room, seen.nick, seen.real_jid, seen.gone, seen.own) \
        == (ROOM, "carol", "carol@example.org", False, True)
    assert occupant(ET.fromstring(
        "<presence xmlns='jabber:client' from='alice@example.org/a'/>")) is None


def test_carbons_received_are_unwrapped_sent_and_forged_ones_dropped() -> None:
    text = ("<message from='{sender}' to='" + OWN + "/bot'><{kind} xmlns='urn:xmpp:carbons:2'>"
            "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
            "from='alice@example.org/a' to='" + OWN + "/xmpp-post.1' type='chat'>"
            "<body>to the other resource</body></message></forwarded></{kind}></message>")
    carbon, inner = unwrap_carbon(stanza(text.format(sender=OWN, kind="received")), OWN)
    copied = read_message(inner, OWN, ROOMS).incoming
    assert carbon and copied is not None and copied.body == "to the other resource"
    assert unwrap_carbon(stanza(text.format(sender=OWN, kind="sent")), OWN) == (True, None)
    assert unwrap_carbon(stanza(text.format(sender="mallory@example.org", kind="received")),
                         OWN) == (True, None)
    assert unwrap_carbon(stanza("<message from='a@b/c'><body>x</body></message>"),
                         OWN) == (False, None)
