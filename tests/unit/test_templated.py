"""``?template=NAME`` through the real web application, the XMPP side faked by
``FakeRelay``: routing, reply contracts, query fields, sizes and idempotency. End to
end with a real server and receiving client: ``test_templates_e2e``."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.helpers import FakeClient as Client
from tests.helpers import MakeClient
from tests.helpers.grants import secret_file, token_entry, toml
from xmpp_post import config
from xmpp_post.cli import main
from xmpp_post.errors import ConfigError
from xmpp_post.fronts.templated import Skipped, render_messages
from xmpp_post.model import OutgoingMessage, Rejected, Sender
from xmpp_post.service import web_app
from xmpp_post.templates import TemplateSet
from xmpp_post.testing import FakeRelay

PAYLOADS = Path(__file__).parents[1] / "payloads"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
AUTH = "Basic " + base64.b64encode(b"alice@example.org:secret").decode()


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def headers(content_type: str = JSON, **extra: str) -> dict[str, str]:
    return {"Authorization": AUTH, "Content-Type": content_type, **extra}




def sent(relay: FakeRelay) -> list[OutgoingMessage]:
    return [message for _, message in relay.sent]


async def test_json_template_answers_like_a_message(make_client: MakeClient) -> None:
    client, relay = await make_client()
    resp = await client.post("/msg/bob?template=github", data=payload("github/push.json"),
                             headers=headers(**{"X-GitHub-Event": "push"}))
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["to"] == "bob@example.org"
    [message] = sent(relay)
    assert message.to == "bob@example.org" and not message.explicit_type
    assert "pushed 3 commits to `main`" in message.body and message.subject is None


async def test_a_form_payload_field_and_to_in_the_query(make_client: MakeClient) -> None:
    client, relay = await make_client()
    form = urlencode({"payload": payload("github/issues_opened.json").decode()})
    resp = await client.post("/msg?template=github&to=bob&to=carol@example.org",
                             data=form, headers=headers(FORM, **{"X-GitHub-Event": "issues"}))
    assert resp.status == 201, await resp.text()
    results = (await resp.json())["results"]
    assert [r["to"] for r in results] == ["bob@example.org", "carol@example.org"]
    assert len({m.body for m in sent(relay)}) == 1 and "opened issue #" in sent(relay)[0].body


async def test_slack_and_discord_reply_contracts(make_client: MakeClient) -> None:
    client, relay = await make_client()
    resp = await client.post("/msg/bob?template=slack", data=payload("slack/text.json"),
                             headers=headers())
    assert (resp.status, resp.content_type, await resp.text()) == (200, "text/plain", "ok")
    resp = await client.post("/msg/bob?template=discord",
                             data=payload("discord/embeds.json"), headers=headers())
    assert resp.status == 204 and await resp.read() == b""
    assert len(relay.sent) == 2
    # Errors keep the JSON shape, whatever the template's reply.
    resp = await client.post("/msg/bob?template=slack", data=b"{", headers=headers())
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_json"
    resp = await client.post("/msg?template=discord", data=b"{}", headers=headers())
    assert resp.status == 422 and set(await resp.json()) == {"error", "message"}


async def test_a_skipped_render_sends_nothing_and_succeeds(make_client: MakeClient) -> None:
    client, relay = await make_client()
    resp = await client.post("/msg/bob?template=github", data=payload("github/ping.json"),
                             headers=headers(**{"X-GitHub-Event": "ping"}))
    assert resp.status == 200
    assert await resp.json() == {"sent": 0, "skipped": True, "template": "github"}
    assert relay.calls == 0
    # ... but a request that could never be sent is still refused
    resp = await client.post("/msg/a@b@c?template=github", data=payload("github/ping.json"),
                             headers=headers(**{"X-GitHub-Event": "ping"}))
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_jid"


async def test_query_fields_win_over_the_template(make_client: MakeClient,
                                                  tmp_path: Path) -> None:
    (tmp_path / "deploy.j2").write_text(
        '{% do set_subject("Deploy " ~ payload.version) %}{{ query.env }}: '
        '{{ payload.version }} is live\n')
    client, relay = await make_client(template_dir=str(tmp_path))
    resp = await client.post("/msg/bob?template=deploy&env=prod", data=b'{"version": "1.2"}',
                             headers=headers())
    assert resp.status == 201
    resp = await client.post("/msg/bob?template=deploy&subject=Ours&type=headline"
                             "&thread=t-1&id=my-id&lang=en", data=b'{"version": "1.3"}',
                             headers=headers())
    assert resp.status == 201 and (await resp.json())["id"] == "my-id"
    resp = await client.post("/msg/bob?template=deploy&subject=", data=b'{"version": "1.4"}',
                             headers=headers())
    assert resp.status == 201
    first, second, third = sent(relay)
    assert (first.body, first.subject, first.type) == ("prod: 1.2 is live", "Deploy 1.2",
                                                       "chat")
    assert (second.subject, second.type, second.thread, second.lang) == \
        ("Ours", "headline", "t-1", "en")
    assert third.subject is None  # an empty subject= drops the template's


@pytest.mark.parametrize("query, status, code", [
    ("template=nope", 404, "unknown_template"),
    ("template=github&type=shout", 400, "invalid_type"),
    ("template=github&subject=a&subject=b", 400, "duplicate_field"),
    ("template=github&template=slack", 400, "duplicate_field"),
    ("template=github&to=bob", 400, "conflicting_recipient"),
])
async def test_bad_template_requests(make_client: MakeClient, query: str, status: int,
                                     code: str) -> None:
    client, relay = await make_client()
    resp = await client.post(f"/msg/carol?{query}", data=payload("github/push.json"),
                             headers=headers(**{"X-GitHub-Event": "push"}))
    assert resp.status == status and (await resp.json())["error"] == code
    assert relay.calls == 0


async def test_unknown_template_names_the_ones_there_are(make_client: MakeClient) -> None:
    client, _ = await make_client()
    resp = await client.post("/msg/bob?template=jenkins", data=b"{}", headers=headers())
    assert resp.status == 404
    assert "alertmanager" in (await resp.json())["message"]
    resp = await client.post("/msg/bob?template=github", data=b"x",
                             headers=headers("text/plain"))
    assert resp.status == 415 and (await resp.json())["error"] == "unsupported_media_type"
    resp = await client.post("/msg?template=github", data=b"{}", headers=headers())
    assert resp.status == 422 and (await resp.json())["error"] == "missing_recipient"


async def test_template_bodies_have_their_own_limit(make_client: MakeClient) -> None:
    client, relay = await make_client(max_body="1KiB", max_template_body="64KiB")
    big = json.dumps({"text": "x" * 40_000})
    resp = await client.post("/msg/bob?template=slack", data=big, headers=headers())
    assert resp.status == 200, await resp.text()
    resp = await client.post("/msg/bob", data=big, headers=headers("text/plain"))
    assert resp.status == 413 and (await resp.json())["error"] == "payload_too_large"
    huge = json.dumps({"text": "x" * 70_000})
    resp = await client.post("/msg/bob?template=slack", data=huge, headers=headers())
    assert resp.status == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: checked as it arrives
        for _ in range(70):
            yield b" " * 1024

    resp = await client.post("/msg/bob?template=slack", data=chunks(), headers=headers())
    assert resp.status == 413
    assert len(relay.sent) == 1


async def test_delivery_ids_make_redeliveries_answered_not_sent(
        make_client: MakeClient) -> None:
    client, relay = await make_client()
    github = headers(**{"X-GitHub-Event": "push",
                        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"})
    first = await client.post("/msg/bob?template=github", data=payload("github/push.json"),
                              headers=github)
    again = await client.post("/msg/bob?template=github", data=payload("github/push.json"),
                              headers=github)
    assert first.status == again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true" and len(relay.sent) == 1
    # GitLab gives every hook fired for an event the same id: two hooks, two messages.
    gitlab = headers(**{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "e-1"})
    for target in ("bob", "carol", "bob"):
        resp = await client.post(f"/msg/{target}?template=gitlab",
                                 data=payload("gitlab/push.json"), headers=gitlab)
        assert resp.status == 201, await resp.text()
    assert [m.to for m in sent(relay)] == ["bob@example.org", "bob@example.org",
                                           "carol@example.org"]
    for name in ("X-Gitea-Delivery", "X-Forgejo-Delivery", "Idempotency-Key"):
        tool = headers(**{name: f"id-{name}", "X-Gitea-Event": "push"})
        replies = [await client.post("/msg/dave?template=gitea",
                                     data=payload("gitea/push.json"), headers=tool)
                   for _ in range(2)]
        assert [r.status for r in replies] == [201, 201]
        assert replies[1].headers.get("Idempotent-Replayed") == "true", name
    assert len(relay.sent) == 3 + 3


async def test_slack_and_discord_replies_are_replayed_as_they_were(
        make_client: MakeClient) -> None:
    client, relay = await make_client()
    for name, status in (("slack", 200), ("discord", 204)):
        key = headers(**{"Idempotency-Key": f"k-{name}"})
        data = payload("slack/text.json" if name == "slack" else "discord/embeds.json")
        replies = [await client.post(f"/msg/bob?template={name}", data=data, headers=key)
                   for _ in range(2)]
        assert [r.status for r in replies] == [status, status]
        assert replies[1].headers["Idempotent-Replayed"] == "true"
        assert [await r.read() for r in replies] == [b"ok", b"ok"] if name == "slack" \
            else [b"", b""]
    assert len(relay.sent) == 2


async def test_options_and_openapi_list_the_templates(make_client: MakeClient,
                                                      tmp_path: Path) -> None:
    (tmp_path / "ours.j2").write_text("{#\nOur deploys.\n#}{{ payload.x }}")
    client, _ = await make_client(template_dir=str(tmp_path))
    resp = await client.options("/msg")
    templates = (await resp.json())["templates"]
    assert templates["ours"] == "Our deploys." and "github" in templates
    doc = await (await client.get("/openapi.json")).json()
    [param] = [p for p in doc["paths"]["/msg"]["post"]["parameters"]
               if p["name"] == "template"]
    assert "ours" in param["schema"]["enum"] and "Our deploys." in param["description"]


async def test_a_template_that_fails_is_422_and_the_gateway_keeps_serving(
        make_client: MakeClient, tmp_path: Path) -> None:
    (tmp_path / "loop.j2").write_text(
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}")
    (tmp_path / "huge.j2").write_text("{{ 'x' * 100000000 }}")
    (tmp_path / "evil.j2").write_text("{{ ''.__class__.__mro__ }}")
    (tmp_path / "broken.j2").write_text("one\n{{ payload.a + 1 }}\n")
    (tmp_path / "empty.j2").write_text("{{ payload.nothing }}\n")
    client, relay = await make_client(template_dir=str(tmp_path))
    for name, code, text in [("loop", "template_error", "loop iterations"),
                             ("huge", "template_error", "'huge'"),
                             ("evil", "template_error", "not allowed"),
                             ("broken", "template_error", "line 2"),
                             ("empty", "missing_body", "skip()")]:
        resp = await client.post(f"/msg/bob?template={name}", data=b'{"a": "s"}',
                                 headers=headers())
        body = await resp.json()
        assert (resp.status, body["error"]) == (422, code), (name, body)
        assert text in body["message"], body
    ok = await client.post("/msg/bob?template=slack", data=payload("slack/text.json"),
                           headers=headers())
    assert ok.status == 200 and relay.calls == 1


def test_a_template_that_does_not_compile_stops_the_app(tmp_path: Path) -> None:
    (tmp_path / "bad.j2").write_text("fine\n{% if %}\n")
    cfg = config.load({"domain": ["example.org"], "template_dir": str(tmp_path)}, environ={})
    with pytest.raises(ConfigError) as caught:
        web_app(cfg, FakeRelay())
    assert caught.value.setting == "template_dir" and "bad.j2:2" in caught.value.problem


async def test_render_messages_is_usable_without_a_request() -> None:
    templates = TemplateSet.load(None)
    sender = Sender("alice@example.org", "secret")
    data = json.loads(payload("github/release_published.json"))
    asked = await render_messages(templates, "github", data, {"X-GitHub-Event": "release"},
                                  {"type": "normal"}, sender,
                                  recipients=["bob", "ops@rooms.example.org", "a@b@c"])
    assert not isinstance(asked, Skipped) and asked.several
    bob, room, bad = asked.items
    assert isinstance(bob, OutgoingMessage) and isinstance(room, OutgoingMessage)
    assert (bob.to, bob.type, room.to) == ("bob@example.org", "normal",
                                           "ops@rooms.example.org")
    assert isinstance(bad, Rejected) and bad.error.code == "invalid_jid"
    skipped = await render_messages(templates, "github", {}, {"X-GitHub-Event": "ping"}, {},
                                    sender, recipients=["bob"])
    assert skipped == Skipped("github")


def test_template_commands_render_and_list_without_a_server(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "deploy.j2").write_text(
        '{#\nDeploys from our CI.\n#}\n{% do set_subject("Deploy") %}'
        '{{ payload.service|bold }} is live on {{ query.env }}\n')
    data = tmp_path / "deploy.json"
    data.write_text(json.dumps({"service": "api"}))
    push = str(PAYLOADS / "github/push.json")
    assert main(["template", "render", "deploy", str(data), "--template-dir", str(tmp_path),
                 "--query", "env=prod"]) == 0
    assert capsys.readouterr().out == "Subject: Deploy\n\n*api* is live on prod\n"
    assert main(["template", "render", "github", push, "--header", "X-GitHub-Event: push"]) == 0
    assert capsys.readouterr().out.startswith("*alice* pushed 3 commits to `main`")
    assert main(["template", "render", "github", push, "--header", "X-GitHub-Event: ping"]) == 0
    assert capsys.readouterr().out == "(nothing is sent)\n"
    assert main(["template", "render", "nope", push]) == 1
    assert "unknown_template" in capsys.readouterr().err
    monkeypatch.setenv("XMPP_POST_TEMPLATE_DIR", str(tmp_path))
    assert main(["template", "list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()
             if line[:1].strip()]
    assert names == ["alertmanager", "deploy", "discord", "gitea", "github", "gitlab",
                     "grafana", "slack"]
    monkeypatch.delenv("XMPP_POST_TEMPLATE_DIR")
    conf = tmp_path / "gw.toml"
    conf.write_text(f'template_dir = "{tmp_path / "missing"}"\n')
    assert main(["template", "list", "--config", str(conf)]) == 2
    assert "template_dir" in capsys.readouterr().err


async def test_a_token_with_a_template_takes_template_sized_bodies(tmp_path: Path) -> None:
    password = secret_file(tmp_path, "alerts.password", "secret")
    token, entry = token_entry("alerts@example.org", template="slack")
    conf = tmp_path / "gw.toml"
    conf.write_text(toml({"accounts": {"alerts@example.org": {"password_file": str(password)}},
                          "tokens": {"slack-sender": entry}}))
    cfg = config.load({"domain": ["example.org"], "max_body": "1KiB"}, environ={},
                      config_file=conf)
    relay = FakeRelay()
    client: Client = TestClient(TestServer(web_app(cfg, relay)))
    await client.start_server()
    try:
        big = json.dumps({"text": "x" * 40_000})
        resp = await client.post("/msg/bob", data=big, headers={
            "Authorization": f"Bearer {token}", "Content-Type": JSON})
        assert (resp.status, await resp.text()) == (200, "ok")
        resp = await client.post("/msg/bob", data=big, headers=headers())
        assert resp.status == 413 and len(relay.sent) == 1
    finally:
        await client.close()
