"""A token's ``rate`` counts messages, one per recipient, end to end against the real
Prosody: a request whose messages would go beyond what is left sends none (429 with
``Retry-After``), on ``/msg`` as on ntfy's topics, and a request that sends nothing
costs nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import Account, AccountFactory, Client, ReceiverFactory, Reply
from tests.helpers.grants import bearer, gateway_from, secret_file, token_entry, toml
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.service import Gateway

PAYLOADS = Path(__file__).parents[1] / "payloads"


@dataclass
class Setup:
    gateway: Gateway
    people: list[Account]
    inboxes: list[Receiver]
    tokens: dict[str, str]

    async def received(self) -> list[str]:
        """What every inbox holds now, in one list."""
        await asyncio.sleep(0.3)  # a message sent in error would have arrived by now
        return [m.body for inbox in self.inboxes for m in inbox.pending()]


@pytest.fixture
async def setup(prosody: ProsodyServer, account: AccountFactory, receiver: ReceiverFactory,
                tmp_path: Path) -> AsyncIterator[Setup]:
    bot = account("bot")
    people = [account(f"r{n}x") for n in range(5)]
    inboxes = [await receiver(person) for person in people]
    password = secret_file(tmp_path, "bot.password", bot.password)
    tokens, entries = {}, {}
    for name, rate in (("two", "2/minute"), ("six", "6/minute")):
        tokens[name], entries[name] = token_entry(bot.jid, rate=rate)
    tables = {"accounts": {bot.jid: {"password_file": str(password)}}, "tokens": entries}
    path = tmp_path / "gw.toml"
    path.write_text(toml(tables, flat="[topics]\nteam = [" + ", ".join(
        f'"{person.jid}"' for person in people[:2]) + "]\n"))
    async with gateway_from(prosody, path) as gateway:
        yield Setup(gateway, people, inboxes, tokens)


async def send(http: Client, setup: Setup, people: list[Account], text: str,
               token: str) -> Reply:
    path = "/msg/" + ",".join(person.local for person in people)
    return await http.post(setup.gateway, path, text, headers=bearer(token))


async def test_a_rate_counts_every_recipient_and_refuses_before_sending(
        setup: Setup, http: Client) -> None:
    five = setup.people
    reply = await send(http, setup, five, "first five", setup.tokens["six"])
    assert reply.status == 201, reply.text
    assert sorted(await setup.received()) == ["first five"] * 5
    reply = await send(http, setup, five, "five more", setup.tokens["six"])
    assert (reply.status, reply.json["error"]) == (429, "rate_limited"), reply.text
    assert 1 <= int(reply.headers["Retry-After"]) <= 60
    assert await setup.received() == []  # none of the five: one was left, not five
    reply = await send(http, setup, five[:1], "the last one", setup.tokens["six"])
    assert reply.status == 201, reply.text
    reply = await send(http, setup, five[:1], "one too many", setup.tokens["six"])
    assert (reply.status, reply.json["error"]) == (429, "rate_limited"), reply.text
    assert await setup.received() == ["the last one"]


async def test_more_recipients_than_the_rate_allows_at_all_is_422(
        setup: Setup, http: Client) -> None:
    reply = await send(http, setup, setup.people, "ten in two requests?", setup.tokens["two"])
    assert (reply.status, reply.json["error"]) == (422, "exceeds_rate"), reply.text
    assert await setup.received() == []
    reply = await send(http, setup, setup.people[:2], "two", setup.tokens["two"])
    assert reply.status == 201, reply.text  # the refused request cost nothing
    assert await setup.received() == ["two", "two"]


async def test_a_topic_with_several_recipients_counts_each(setup: Setup, http: Client) -> None:
    url = setup.gateway.url + "/team"
    reply = await http.request("POST", url, data="to the team", headers=bearer(
        setup.tokens["two"]))
    assert reply.status == 200, reply.text
    reply = await http.request("POST", url, data="again", headers=bearer(setup.tokens["two"]))
    assert (reply.status, reply.json["error"]) == (429, "rate_limited"), reply.text
    assert await setup.received() == ["to the team", "to the team"]


async def test_a_request_that_sends_nothing_costs_nothing(setup: Setup, http: Client) -> None:
    ping = (PAYLOADS / "github/ping.json").read_text()
    for _ in range(3):
        reply = await http.post(setup.gateway, f"/msg/{setup.people[0].local}?template=github",
                                ping, content_type="application/json",
                                headers={**bearer(setup.tokens["two"]),
                                         "X-GitHub-Event": "ping"})
        assert reply.status == 200 and json.loads(reply.text)["skipped"] is True
    reply = await send(http, setup, setup.people[:2], "still two", setup.tokens["two"])
    assert reply.status == 201, reply.text
