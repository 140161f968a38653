"""Signed webhooks end to end: each verify scheme against the real Prosody, a form-encoded
GitHub delivery, redeliveries, throttling of bad signatures, metrics, and no secrets."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.helpers import Account, AccountFactory, Client, ReceiverFactory
from tests.helpers.faults import client_from
from tests.helpers.grants import (
    gateway_from,
    hex_hmac,
    metric,
    secret_file,
    standard_signature,
    toml,
)
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.service import Gateway

SECRETS = {"github": "gh-s3cret-4711", "gitea": "gt-s3cret-4712", "gitlab": "gl-s3cret-4713",
           "grafana": "gr-s3cret-4714"}
STANDARD_KEY = b"standard webhooks key 0123456789"
ECHO_KEY = b"the echo webhook's own key 01234"
TITLE = "Kettle is on fire"
ISSUE = {"action": "opened", "issue": {"number": 7, "title": TITLE,
                                       "html_url": "https://forge.example/i/7"},
         "repository": {"full_name": "acme/kettle"}, "sender": {"login": "mallory"}}
GITLAB = {"object_kind": "issue", "user": {"username": "mallory"},
          "project": {"path_with_namespace": "acme/kettle"},
          "object_attributes": {"iid": 7, "title": TITLE, "action": "open",
                                "url": "https://gl.example/i/7"}}
GRAFANA = {"status": "firing", "title": "[FIRING:1] KettleHot",
           "alerts": [{"status": "firing", "labels": {"alertname": "KettleHot"},
                       "annotations": {"summary": TITLE}}]}


# A user template that shows what it sees of a request besides the payload.
ECHO = ("{{ payload.title }} headers={{ headers|dictsort|map('join', '=')|join(',') }} "
        "query={{ query|length }}\n")


@dataclass
class Hooks:
    gateway: Gateway
    bot: Account
    inbox: Receiver
    folder: Path


@pytest.fixture
async def hooks(prosody: ProsodyServer, account: AccountFactory, receiver: ReceiverFactory,
                tmp_path: Path) -> AsyncIterator[Hooks]:
    bot, bob = account("bot"), account("bob")
    inbox = await receiver(bob)
    password = secret_file(tmp_path, "bot.password", bot.password + "\n")
    webhooks = {verify: {"account": bot.jid, "to": [bob.jid], "verify": verify,
                         "secret_file": str(secret_file(tmp_path, verify, secret + "\n"))}
                for verify, secret in SECRETS.items()}
    std_secret = "whsec_" + base64.b64encode(STANDARD_KEY).decode()
    webhooks["standard"] = {"account": bot.jid, "to": [bob.jid], "verify": "standard-webhooks",
                            "template": "grafana",
                            "secret_file": str(secret_file(tmp_path, "std", std_secret))}
    webhooks["echo"] = webhooks["standard"] | {"template": "echo", "secret_file": str(
        secret_file(tmp_path, "echo", "whsec_" + base64.b64encode(ECHO_KEY).decode()))}
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "echo.j2").write_text(ECHO)
    path = tmp_path / "gw.toml"
    path.write_text(toml({"accounts": {bot.jid: {"password_file": str(password)}},
                          "webhooks": webhooks}))
    async with gateway_from(prosody, path,
                            template_dir=str(tmp_path / "templates")) as gateway:
        yield Hooks(gateway, bot, inbox, tmp_path)


def delivery(verify: str, body: bytes, *, stamp: float | None = None,
             sign: bool = True, secret: str | None = None) -> dict[str, str]:
    """The headers a tool sends with ``body``; ``sign=False`` leaves the proof out."""
    key = secret or SECRETS.get(verify, "")
    ts = str(int(time.time() if stamp is None else stamp))
    headers = {"Content-Type": "application/json"}
    if verify == "github":
        headers |= {"X-GitHub-Event": "issues", "X-GitHub-Delivery": f"d-{time.time_ns()}"}
        if sign:
            headers["X-Hub-Signature-256"] = "sha256=" + hex_hmac(key, body)
    elif verify == "gitea":
        headers |= {"X-Forgejo-Event": "issues", "X-Forgejo-Delivery": f"d-{time.time_ns()}"}
        if sign:
            headers["X-Forgejo-Signature"] = hex_hmac(key, body)
    elif verify == "gitlab":
        headers |= {"X-Gitlab-Event": "Issue Hook", "X-Gitlab-Event-UUID": f"u-{time.time_ns()}"}
        if sign:
            headers["X-Gitlab-Token"] = key
    elif verify == "grafana":
        headers["X-Grafana-Alerting-Signature-Timestamp"] = ts
        if sign:
            headers["X-Grafana-Alerting-Signature"] = hex_hmac(key, ts.encode() + b":" + body)
    else:
        msg_id = f"msg_{time.time_ns()}"
        headers |= {"webhook-id": msg_id, "webhook-timestamp": ts}
        if sign:
            headers["webhook-signature"] = standard_signature(
                STANDARD_KEY if secret is None else secret.encode(), msg_id, ts, body)
    return headers


PAYLOADS = {"github": ISSUE, "gitea": ISSUE, "gitlab": GITLAB, "grafana": GRAFANA,
            "standard": GRAFANA}
TIMED = ("grafana", "standard")


async def post(http: Client, hooks: Hooks, name: str, body: bytes,
               headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    reply = await http.request("POST", f"{hooks.gateway.url}/hooks/{name}", data=body,
                               headers=headers)
    return reply.status, (reply.json if reply.text else {})


@pytest.mark.parametrize("name", ["github", "gitea", "gitlab", "grafana", "standard"])
async def test_a_signed_delivery_is_sent_and_a_bad_one_is_401_with_nothing_sent(
        hooks: Hooks, http: Client, name: str) -> None:
    verify = "standard-webhooks" if name == "standard" else name
    body = json.dumps(PAYLOADS[name]).encode()
    tampered = body.replace(TITLE.encode(), b"Kettle is fine")
    cases = [("invalid_signature", body, delivery(verify, body, secret="not-the-secret-99")),
             ("missing_signature", body, delivery(verify, body, sign=False))]
    if name != "gitlab":  # GitLab's token does not cover the body
        cases.append(("invalid_signature", tampered, delivery(verify, body)))
    if name in TIMED:
        cases.append(("stale_signature", body, delivery(verify, body,
                                                        stamp=time.time() - 600)))
    for code, data, headers in cases:
        status, answer = await post(http, hooks, name, data, headers)
        assert (status, answer.get("error")) == (401, code), answer
    status, answer = await post(http, hooks, name, body, delivery(verify, body))
    assert status == 201, answer
    assert answer["from"] == hooks.bot.jid
    received = await hooks.inbox.next()
    assert TITLE in received.body and received.sender.startswith(hooks.bot.jid)
    assert hooks.inbox.pending() == []  # the refused deliveries sent nothing


async def test_a_form_encoded_github_delivery_is_verified_over_the_raw_form(
        hooks: Hooks, http: Client) -> None:
    body = urlencode({"payload": json.dumps(ISSUE)}).encode()
    headers = delivery("github", body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    status, answer = await post(http, hooks, "github", body, headers)
    assert status == 201, answer
    assert TITLE in (await hooks.inbox.next()).body


async def test_a_redelivery_is_answered_again_and_not_sent_twice(
        hooks: Hooks, http: Client) -> None:
    body = json.dumps(ISSUE).encode()
    headers = delivery("github", body)
    first = await http.request("POST", f"{hooks.gateway.url}/hooks/github", data=body,
                               headers=headers)
    again = await http.request("POST", f"{hooks.gateway.url}/hooks/github", data=body,
                               headers=headers)
    assert (first.status, again.status) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == first.json
    assert TITLE in (await hooks.inbox.next()).body
    ping = delivery("github", b"{}") | {"X-GitHub-Event": "ping"}
    status, answer = await post(http, hooks, "github", b"{}", ping)
    assert (status, answer) == (200, {"sent": 0, "skipped": True, "template": "github"})
    assert hooks.inbox.pending() == []


async def test_unknown_webhooks_are_404_and_bad_signatures_are_throttled_per_address(
        hooks: Hooks, http: Client) -> None:
    status, answer = await post(http, hooks, "nope", b"{}", {"Content-Type": "application/json"})
    assert (status, answer["error"]) == (404, "webhook_not_found")
    body = json.dumps(ISSUE).encode()
    async with client_from("127.0.0.3") as attacker:
        url = f"{hooks.gateway.url}/hooks/github"
        for expected in (401, 401, 401, 401, 401, 429):  # auth_failure_limit is 5
            reply = await attacker.request("POST", url, data=body,
                                           headers=delivery("github", body, secret="guess"))
            assert reply.status == expected, reply.text
        assert reply.json["error"] == "too_many_failed_logins" and reply.headers["Retry-After"]
        # A delivery the gateway can verify is not a guess: it goes through.
        reply = await attacker.request("POST", url, data=body,
                                       headers=delivery("github", body))
        assert reply.status == 201, reply.text
    status, _ = await post(http, hooks, "github", body, delivery("github", body))
    assert status == 201
    assert [TITLE in m.body for m in await hooks.inbox.collect(2)] == [True, True]
    text = (await http.request("GET", hooks.gateway.url + "/metrics")).text
    assert metric(text, "xmpp_post_credential_failures_total", kind="webhook",
                  name="github") == 6
    assert metric(text, "xmpp_post_credential_requests_total", kind="webhook",
                  name="github") == 8


async def test_no_secret_in_logs_metrics_or_answers(
        hooks: Hooks, http: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    body = json.dumps(ISSUE).encode()
    answers = []
    for name in ("github", "gitlab"):
        for headers in (delivery(name, body), delivery(name, body, secret="wrong-s3cret-99")):
            reply = await http.request("POST", f"{hooks.gateway.url}/hooks/{name}", data=body,
                                       headers=headers)
            answers.append(reply.text + str(dict(reply.headers)))
    await hooks.inbox.collect(2)
    metrics = (await http.request("GET", hooks.gateway.url + "/metrics")).text
    everything = caplog.text + metrics + "".join(answers)
    assert "refused credentials (webhook:gitlab)" in caplog.text
    for secret in [*SECRETS.values(), hooks.bot.password, "wrong-s3cret-99",
                   hex_hmac(SECRETS["github"], body)]:
        assert secret not in everything, secret


async def test_a_replayed_delivery_takes_nothing_from_an_unsigned_query_string(
        hooks: Hooks, http: Client) -> None:
    """Recipients, message fields and nick come from the configuration only: a captured
    delivery replayed with a query string (which no signature covers) is refused and
    sends nothing; nor does a query string make a retry a new delivery."""
    body = json.dumps(ISSUE).encode()
    captured = delivery("github", body)
    status, _ = await post(http, hooks, "github", body, captured)
    assert status == 201
    assert TITLE in (await hooks.inbox.next()).body
    bob = hooks.inbox.jid
    queries = [f"to={bob}&oob_url=https://evil.example/phish&subject=URGENT&type=headline",
               f"to={bob}&nick=carol", "subject=URGENT", "x=1", "template=slack",
               "subject=", "auth=x", "to", "&"]
    for query in queries:
        for headers in (captured, delivery("github", body)):  # a replay, a fresh id
            status, answer = await post(http, hooks, f"github?{query}", body, headers)
            assert (status, answer.get("error")) == (400, "query_not_allowed"), query
            assert "evil" not in str(answer)
    reply = await http.request("POST", f"{hooks.gateway.url}/hooks/github", data=body,
                               headers=captured)  # the tool's own retry: answered again
    assert reply.status == 201 and reply.headers["Idempotent-Replayed"] == "true"
    assert hooks.inbox.pending() == []


async def replay(http: Client, hooks: Hooks, name: str, body: bytes,
                 variants: list[dict[str, str]], signed: dict[str, str]) -> list[str]:
    """``signed`` sent once per variant (headers added); the Idempotent-Replayed of each."""
    seen = []
    for extra in variants:
        reply = await http.request("POST", f"{hooks.gateway.url}/hooks/{name}", data=body,
                                   headers=signed | extra)
        assert reply.status == 201, reply.text
        seen.append(reply.headers.get("Idempotent-Replayed", "-"))
    return seen


OTHER_IDS = [{}, {}, {"Idempotency-Key": "k1"}, {"X-GitHub-Delivery": "zzz"},
             {"X-Gitea-Delivery": "q", "Idempotency-Key": "k2"}]


async def test_only_the_signed_id_deduplicates_a_standard_webhooks_delivery(
        hooks: Hooks, http: Client) -> None:
    body = json.dumps(GRAFANA).encode()
    signed = delivery("standard-webhooks", body)
    seen = await replay(http, hooks, "standard", body, OTHER_IDS, signed)
    assert seen == ["-"] + ["true"] * 4
    assert "KettleHot" in (await hooks.inbox.next()).body
    assert hooks.inbox.pending() == []


async def test_a_timed_grafana_delivery_is_deduplicated_on_what_it_signs(
        hooks: Hooks, http: Client) -> None:
    """Grafana sends no delivery id; with its timestamp, the signed (time, body) is one
    delivery: replayed within max_age, whatever id headers are added, it is sent once."""
    body = json.dumps(GRAFANA).encode()
    signed = delivery("grafana", body)
    seen = await replay(http, hooks, "grafana", body, OTHER_IDS, signed)
    assert seen == ["-"] + ["true"] * 4
    assert "KettleHot" in (await hooks.inbox.next()).body
    later = delivery("grafana", body, stamp=time.time() + 1)  # a new delivery: a new time
    assert await replay(http, hooks, "grafana", body, [{}], later) == ["-"]
    assert "KettleHot" in (await hooks.inbox.next()).body
    assert hooks.inbox.pending() == []


async def test_a_template_sees_no_header_a_replay_could_add(
        hooks: Hooks, http: Client) -> None:
    """Only the headers the scheme's tool sends with every delivery reach the template
    (here standard-webhooks': its signed id and time); an added one changes nothing."""
    body = json.dumps(GRAFANA).encode()
    signed = delivery("standard-webhooks", body, secret=ECHO_KEY.decode()) | {
        "X-Note": "call +1-555-0100 now", "User-Agent": "mallory", "X-GitHub-Event": "push"}
    status, _ = await post(http, hooks, "echo", body, signed)
    assert status == 201
    text = (await hooks.inbox.next()).body
    assert text == (f"{GRAFANA['title']} headers=webhook-id={signed['webhook-id']},"
                    f"webhook-timestamp={signed['webhook-timestamp']} query=0")
