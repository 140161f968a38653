"""The alert actions' parts with nothing started but in-process HTTP: commands read
from chat text, the memory of which message carried which alert (through the real web
application and ``FakeRelay``), who may act, and how Alertmanager's failures are
answered (a stand-in Alertmanager in this process records what it is asked). Against a
real Alertmanager: ``tests/e2e/test_alert_actions.py``."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings

from tests.helpers import MakeClient
from tests.helpers.linear import adversarial, assert_linear
from xmpp_post.bots.alert_actions import NO_ALERT, REFUSED, AlertActions
from xmpp_post.bots.alert_commands import (
    CommandError,
    ListAlerts,
    Silence,
    Unsilence,
    parse_command,
    parse_duration,
)
from xmpp_post.bots.alert_memory import (
    MAX_LABELS,
    AlertMemory,
    Remember,
    SentAlert,
    canonical,
    first_line,
    quoted_lines,
    remember_alerts,
)
from xmpp_post.http.context import SENT_WATCHERS, TemplatedSent
from xmpp_post.incoming import Incoming, ReplyTo
from xmpp_post.model import OutgoingMessage, Receipt, Sender
from xmpp_post.state.memory_lasting import MemoryKeyValue

PAYLOAD = Path(__file__).parents[1] / "payloads" / "alertmanager" / "firing.json"
BOT = "alice@example.org"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{BOT}:secret".encode()).decode(),
        "Content-Type": "application/json"}
ROOM = "ops@conference.example.org"
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
LABELS = (("alertname", "HighLatency"), ("job", "api"), ("service", "checkout"),
          ("severity", "critical"))


@pytest.mark.parametrize(("text", "seconds"), [
    ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1W", 604800),
    ("90s", 90), ("0h", None), ("h", None), ("2", None), ("2x", None), ("-1h", None),
    ("1h 30m", None), ("1234567h", None), ("", None), ("1" * 30 + "h", None),
])
def test_durations(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("body", "command"), [
    ("silence 2h", Silence(7200)),
    ("SILENCE 1h30m deploy in progress", Silence(5400, "deploy in progress")),
    ("> *[FIRING:1]* DiskFull\n\nsilence 30m  disk swap ", Silence(1800, "disk swap")),
    ("alerts: silence 2h", Silence(7200)),
    ("alerts, Unsilence", Unsilence()),
    ("unsilence", Unsilence()),
    ("Alerts", ListAlerts()),
    ("alerts: alerts", ListAlerts()),
    ("alerts are noisy today", None),
    ("unsilence it please", None),
    ("hello", None),
    ("> silence 2h", None),  # only quoted: the alert, not a command
    ("", None),
    ("silence", CommandError),
    ("silence forever", CommandError),
    ("silence 30s", CommandError),
    ("silence 31d", CommandError),
])
def test_commands(body: str, command: object) -> None:
    found = parse_command(body)
    if command is CommandError:
        assert (isinstance(found, CommandError) and "silence <duration>" in found.text) \
            or (isinstance(found, CommandError) and "1m to 30d" in found.text)
    else:
        assert found == command


@pytest.mark.parametrize("name", ["command", "quotes", "first line"])
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(make=adversarial())
def test_reading_a_message_is_linear(name: str, make: Callable[[int], str]) -> None:
    read: dict[str, Callable[[str], object]] = {
        "command": parse_command, "quotes": quoted_lines,
        "first line": lambda text: canonical(first_line(text))}
    assert_linear(read[name], make, 16 * 1024, name)


def test_long_messages_are_read_only_in_part() -> None:
    quoted = "".join(f"> line {n} of a long alert\n" for n in range(1000))
    assert parse_command(quoted + "silence 2h") == Silence(7200)
    assert parse_command("\n" * 70_000 + "silence 2h") is None
    assert quoted_lines("> a\n" * 1_000_000) == ["a", "a", "a"]


def test_a_quote_matches_the_first_line_whatever_its_styling() -> None:
    assert quoted_lines("> *[FIRING:2]* HighLatency\n> more\nsilence 2h") == [
        "*[FIRING:2]* HighLatency", "more"]
    assert canonical("*[FIRING:2]*   HighLatency ") == canonical("> [firing:2] highlatency"
                                                                 .lstrip("> "))


class StandIn:
    """An Alertmanager in this process that records requests and answers as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.status = 200
        self.text: str | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path_qs, body))
        if self.text is not None:
            return web.Response(status=self.status, text=self.text)
        if request.method == "POST":
            made = sum(1 for method, _, _ in self.requests if method == "POST")
            return web.json_response({"silenceID": f"0f1e2d3c-{made:04d}"})
        if request.method == "GET":
            return web.json_response([{"labels": {"alertname": "DiskFull",
                                                  "instance": "db-1"},
                                       "annotations": {"summary": "Disk almost full"}}])
        return web.Response(status=200)


Actions = Callable[..., Awaitable[tuple[AlertActions, StandIn, AlertMemory]]]


@pytest.fixture
async def actions() -> AsyncIterator[Actions]:
    servers: list[TestServer] = []
    async with aiohttp.ClientSession() as http:
        async def make(*, allow: frozenset[str] | None = None,
                       members: frozenset[str] = frozenset(),
                       url: str | None = None) -> tuple[AlertActions, StandIn, AlertMemory]:
            stand_in = StandIn()
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", stand_in.handle)
            server = TestServer(app)
            await server.start_server()
            servers.append(server)
            store = MemoryKeyValue()

            async def room_members(room: str) -> frozenset[str]:
                return members if room == ROOM else frozenset()

            made = AlertActions(account=BOT, alertmanager_url=url or str(server.make_url("")),
                                allow=allow, store=store, http=http,
                                room_members=room_members, clock=lambda: NOW)
            alert = SentAlert(LABELS, ("bob@example.org",), (ROOM,),
                              "*[FIRING:2]* HighLatency", 0.0)
            await made.memory.remember(BOT, ["m1"], alert)
            return made, stand_in, made.memory

        yield make
        for server in servers:
            await server.close()


def chat(body: str, sender: str = "bob@example.org/phone", reply_to: str | None = "m1",
         **room: Any) -> Incoming:
    return Incoming(id="x1", type="groupchat" if room else "chat", sender=sender,
                    to=BOT, body=body, reply_to=ReplyTo(reply_to) if reply_to else None,
                    **room)


async def test_silence_then_unsilence_a_replied_alert(actions: Actions) -> None:
    bot, stand_in, _ = await actions()
    answer = await bot.answer(chat("silence 2h deploy"))
    assert answer is not None and "(silence 0f1e2d3c-0001)" in answer
    assert "2026-12-07 17:00 UTC" in answer and "alertname=HighLatency" in answer
    [(method, path, body)] = stand_in.requests
    assert (method, path) == ("POST", "/api/v2/silences")
    assert body == {
        "matchers": [{"name": n, "value": v, "isRegex": False, "isEqual": True}
                     for n, v in LABELS],
        "startsAt": "2026-12-07T15:00:00.000Z", "endsAt": "2026-12-07T17:00:00.000Z",
        "createdBy": "bob@example.org", "comment": "deploy"}
    again = await bot.answer(chat("silence 1d"))
    assert again is not None and "(silence 0f1e2d3c-0002, replacing silence 0f1e2d3c-0001)" \
        in again
    assert stand_in.requests[-1][:2] == ("DELETE", "/api/v2/silence/0f1e2d3c-0001")
    answer = await bot.answer(chat("unsilence"))
    assert answer == "Silence 0f1e2d3c-0002 expired: alertname=HighLatency, job=api, " \
        "service=checkout, severity=critical notifies again."
    assert stand_in.requests[-1][:2] == ("DELETE", "/api/v2/silence/0f1e2d3c-0002")
    assert "no silence" in (await bot.answer(chat("unsilence")) or "")


async def test_a_quote_of_the_first_line_finds_the_alert(actions: Actions) -> None:
    bot, stand_in, _ = await actions()
    answer = await bot.answer(chat("> [FIRING:2] HighLatency\nsilence 1h", reply_to=None))
    assert answer is not None and answer.startswith("Silenced until")
    assert await bot.answer(chat("silence 1h", reply_to="unknown")) == NO_ALERT
    assert await bot.answer(chat("hello there")) is None
    assert len(stand_in.requests) == 1


async def test_who_may_act(actions: Actions) -> None:
    bot, stand_in, _ = await actions(members=frozenset({"dave@example.org"}))
    stranger = chat("silence 2h", sender="mallory@example.org/x")
    assert await bot.answer(stranger) == REFUSED
    assert await bot.answer(chat("alerts", sender="mallory@example.org/x")) == REFUSED
    anonymous = chat("silence 2h", sender=f"{ROOM}/dave", room=ROOM, nick="dave")
    assert await bot.answer(anonymous) == REFUSED
    assert stand_in.requests == []
    member = chat("silence 2h", sender=f"{ROOM}/dave", room=ROOM, nick="dave",
                  real_jid="dave@example.org/laptop")
    assert (await bot.answer(member) or "").startswith("Silenced until")
    assert stand_in.requests[-1][2]["createdBy"] == "dave@example.org"
    listed = await bot.answer(chat("alerts", reply_to=None))  # bob got an alert
    assert listed == "Firing: 1\n• DiskFull — instance=db-1 — Disk almost full"
    in_room = chat("alerts", sender=f"{ROOM}/dave", room=ROOM, nick="dave",
                   real_jid="dave@example.org/laptop", reply_to=None)
    assert (await bot.answer(in_room) or "").startswith("Firing: 1")


async def test_allow_replaces_the_recipients(actions: Actions) -> None:
    bot, stand_in, _ = await actions(allow=frozenset({"erin@example.org"}))
    assert await bot.answer(chat("silence 2h")) == REFUSED  # bob got it, but is not allowed
    assert (await bot.answer(chat("silence 2h", sender="erin@example.org/a")) or ""
            ).startswith("Silenced")
    assert len(stand_in.requests) == 1


async def test_alertmanager_failures_are_answered_without_the_secret(
        actions: Actions) -> None:
    bot, stand_in, _ = await actions()
    stand_in.status, stand_in.text = 500, '"silence invalid: bad matcher"'
    answer = await bot.answer(chat("silence 2h"))
    assert answer == ("Nothing changed: Alertmanager answered 500: silence invalid: "
                      "bad matcher.")
    stand_in.status, stand_in.text = 200, "not json"
    assert await bot.answer(chat("silence 2h")) == \
        "Nothing changed: Alertmanager's answer is not JSON."
    stand_in.status, stand_in.text = 200, "[" * 60_000  # nested beyond json.loads' depth
    assert await bot.answer(chat("silence 2h")) == \
        "Nothing changed: Alertmanager's answer is not JSON."
    stand_in.status, stand_in.text = 500, "[" * 60_000
    assert (await bot.answer(chat("silence 2h")) or "").startswith(
        "Nothing changed: Alertmanager answered 500")
    down, _, _ = await actions(url="http://oncall:hunter2@127.0.0.1:9/prefix")
    answer = await down.answer(chat("silence 2h")) or ""
    assert answer.startswith("Nothing changed: Alertmanager (http://127.0.0.1:9/prefix) "
                             "is unreachable")
    assert "hunter2" not in answer and "oncall" not in answer


async def test_sent_alerts_are_remembered_for_bot_accounts_only(
        make_client: MakeClient) -> None:
    async def deliver(_sender: Sender, message: OutgoingMessage) -> Receipt:
        kind = "groupchat" if message.to == ROOM else "chat"
        return Receipt(id=f"id-{message.to}", sender=BOT, to=message.to, type=kind)

    client, _ = await make_client(handler=deliver)
    memory = AlertMemory(MemoryKeyValue())
    client.app[SENT_WATCHERS].append(Remember(memory, {BOT}))
    resp = await client.post(f"/msg?template=alertmanager&to=bob&to={ROOM}",
                             data=PAYLOAD.read_bytes(), headers=AUTH)
    assert resp.status == 201, await resp.text()
    for message_id in ("id-bob@example.org", f"id-{ROOM}"):
        alert = await memory.by_message(BOT, message_id)
        assert alert is not None and alert.labels == LABELS
        assert alert.recipients == ("bob@example.org",) and alert.rooms == (ROOM,)
        assert alert.first_line == "*[FIRING:2]* HighLatency checkout"
    assert await memory.by_quote(BOT, ["[FIRING:2] HighLatency checkout"]) is not None
    assert await memory.was_sent_to(BOT, "bob@example.org")
    assert not await memory.was_sent_to(BOT, "carol@example.org")
    # Another template, or another account, is not remembered.
    other = AlertMemory(MemoryKeyValue())
    client.app[SENT_WATCHERS][:] = [Remember(other, {"carol@example.org"})]
    resp = await client.post("/msg/bob?template=alertmanager", data=PAYLOAD.read_bytes(),
                             headers=AUTH)
    assert resp.status == 201
    assert await other.by_message(BOT, "id-bob@example.org") is None
    # Grafana's payload: its commonLabels too.
    client.app[SENT_WATCHERS][:] = [Remember(other, {BOT})]
    grafana = PAYLOAD.parents[1] / "grafana" / "firing.json"
    resp = await client.post("/msg/bob?template=grafana", data=grafana.read_bytes(),
                             headers=AUTH)
    assert resp.status == 201
    alert = await other.by_message(BOT, "id-bob@example.org")
    assert alert is not None and dict(alert.labels) == json.loads(
        grafana.read_bytes())["commonLabels"]


def test_too_many_labels_are_not_remembered() -> None:
    remember = Remember(AlertMemory(MemoryKeyValue()), {BOT})
    receipt = (Receipt(id="1", sender=BOT, to="bob@example.org", type="chat"),)
    labels = {f"l{n}": "v" for n in range(MAX_LABELS + 1)}
    too_many = TemplatedSent(BOT, "alertmanager", True, {"commonLabels": labels}, "x", receipt)
    assert remember.alert_of(too_many) is None
    fine = TemplatedSent(BOT, "grafana", True, {"commonLabels": {"a": "b"}}, "x", receipt)
    assert remember.alert_of(fine) is not None
    not_builtin = TemplatedSent(BOT, "grafana", False, {"commonLabels": {"a": "b"}}, "x",
                                receipt)
    assert remember.alert_of(not_builtin) is None
    assert SentAlert.loads(b"{") is None
    assert json.loads(remember.alert_of(fine).dumps())["labels"] == {"a": "b"}  # type: ignore[union-attr]


def test_the_wiring_adds_a_watcher_only_for_bot_accounts() -> None:
    watchers: list[Any] = []
    assert remember_alerts(watchers, MemoryKeyValue(), []) is None and watchers == []
    assert remember_alerts(watchers, MemoryKeyValue(), [BOT]) is not None
    assert len(watchers) == 1


class BrokenStore(MemoryKeyValue):
    async def get(self, namespace: str, key: str) -> bytes | None:
        raise OSError("disk I/O error")


async def test_a_failure_of_the_gateway_is_answered_and_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    async def nobody(_room: str) -> frozenset[str]:
        return frozenset()

    async with aiohttp.ClientSession() as http:
        bot = AlertActions(account=BOT, alertmanager_url="http://127.0.0.1:9", allow=None,
                           store=BrokenStore(), http=http, room_members=nobody)
        assert await bot.answer(chat("silence 2h")) == \
            "The alert action failed (see the gateway's log)."
    assert "disk I/O error" in caplog.text
