"""ntfy publishing with API tokens, end to end: as ntfy clients present them (Bearer, the
``auth`` parameter, the password of Basic with no user), within the token's scope, and
``[topics]`` swapped by a reload."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Account, AccountFactory, Client, ReceiverFactory, Reply
from tests.helpers.grants import gateway_from, secret_file, token_entry, toml
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.service import Gateway


@dataclass
class Setup:
    gateway: Gateway
    bot: Account
    bob: Account
    carol: Account
    inboxes: tuple[Receiver, Receiver]
    path: Path
    tables: dict[str, Any]
    tokens: dict[str, str]

    def write(self, topics: str) -> None:
        self.path.write_text(toml(self.tables, flat=topics))


@pytest.fixture
async def setup(prosody: ProsodyServer, account: AccountFactory, receiver: ReceiverFactory,
                tmp_path: Path) -> AsyncIterator[Setup]:
    bot, bob, carol = account("bot"), account("bob"), account("carol")
    inboxes = (await receiver(bob), await receiver(carol))
    password = secret_file(tmp_path, "bot.password", bot.password)
    tokens, entries = {}, {}
    for name, scope in (("ci", {}), ("bob-only", {"to": [bob.jid]}),
                        ("grafana", {"template": "grafana"})):
        tokens[name], entries[name] = token_entry(bot.jid, **scope)
    tables = {"accounts": {bot.jid: {"password_file": str(password)}}, "tokens": entries}
    made = Setup(None, bot, bob, carol, inboxes, tmp_path / "gw.toml",  # type: ignore[arg-type]
                 tables, tokens)
    made.write(f'[topics]\nteam = ["{bob.jid}"]\n')
    async with gateway_from(prosody, made.path) as gateway:
        made.gateway = gateway
        yield made


async def publish(http: Client, setup: Setup, path: str, text: str,
                  headers: dict[str, str] | None = None) -> Reply:
    return await http.request("POST", setup.gateway.url + path, data=text,
                              headers=headers or {})


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_tokens_as_ntfy_clients_present_them(setup: Setup, http: Client) -> None:
    token, bob, inbox = setup.tokens["ci"], setup.bob, setup.inboxes[0]
    param = base64.urlsafe_b64encode(f"Bearer {token}".encode()).decode().rstrip("=")
    for path, headers in [(f"/{bob.local}", {"Authorization": f"Bearer {token}"}),
                          (f"/{bob.local}?auth={param}", {}),
                          (f"/{bob.local}", {"Authorization": basic("", token)})]:
        reply = await publish(http, setup, path, "from the bot", headers)
        assert reply.status == 200, reply.text
        got = await inbox.next()
        assert (got.sender.split("/")[0], got.body) == (setup.bot.jid, "from the bot")
    reply = await publish(http, setup, f"/{bob.local}",
                          "x", {"Authorization": "Bearer xpt_revoked-or-never"})
    assert reply.status == 401
    assert (reply.json["error"], reply.json["http"]) == ("invalid_credentials", 401)


async def test_a_tokens_scope_holds_on_ntfy_topics(setup: Setup, http: Client) -> None:
    only_bob = {"Authorization": f"Bearer {setup.tokens['bob-only']}"}
    reply = await publish(http, setup, "/team", "to the team", only_bob)  # team is bob
    assert reply.status == 200, reply.text
    assert (await setup.inboxes[0].next()).body == "to the team"
    reply = await publish(http, setup, f"/{setup.carol.local}", "to carol", only_bob)
    assert reply.status == 403
    assert (reply.json["error"], reply.json["code"]) == ("recipient_not_allowed", 40300)
    templated = {"Authorization": f"Bearer {setup.tokens['grafana']}"}
    reply = await publish(http, setup, f"/{setup.bob.local}", "raw text", templated)
    assert reply.status == 403 and reply.json["error"] == "template_not_allowed"
    reply = await publish(http, setup, f"/{setup.bob.local}", "still fine", only_bob)
    assert reply.status == 200
    assert (await setup.inboxes[0].next()).body == "still fine"  # nothing else arrived


async def test_a_reload_swaps_the_topics(setup: Setup, http: Client) -> None:
    ci = {"Authorization": f"Bearer {setup.tokens['ci']}"}
    setup.write(f'[topics]\nteam = ["{setup.carol.jid}"]\n')
    assert setup.gateway.reload()
    reply = await publish(http, setup, "/team", "after the reload", ci)
    assert reply.status == 200, reply.text
    assert (await setup.inboxes[1].next()).body == "after the reload"
    setup.write('[topics]\nmsg = ["x@example.org"]\n')  # the base path's: refused
    assert not setup.gateway.reload()
    reply = await publish(http, setup, "/team", "still carol", ci)
    assert reply.status == 200
    assert (await setup.inboxes[1].next()).body == "still carol"
