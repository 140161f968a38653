"""The token and webhook schemes without a server: parsing, rates, every verify scheme."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from tests.helpers.grants import hex_hmac, secret_file, standard_signature, token_entry, toml
from xmpp_post import config
from xmpp_post.auth import Presented
from xmpp_post.auth.tokens import RateLimits, TokenScheme, presented_token
from xmpp_post.auth.webhooks import WebhookScheme, delivery_id
from xmpp_post.config.live import LiveConfig
from xmpp_post.config.tokens_webhooks import Rate
from xmpp_post.errors import (
    BadRequest,
    CredentialsRefused,
    NotFound,
    TooManyRequests,
    Unprocessable,
)
from xmpp_post.templates import TemplateSet

JID = "alerts@example.org"
NOW = 1_700_000_000.0
BODY = b'{"hello": "world"}'
KEY = bytes(range(32))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer xpt_abc", "xpt_abc"), ("bearer   xpt_abc ", "xpt_abc"),
    (basic("anyone", "xpt_abc"), "xpt_abc"), (basic("alice", "a password"), None),
    ("Basic !!!", None), ("Digest x", None),
])
def test_the_token_is_found_in_bearer_and_in_basic(header: str, token: str | None) -> None:
    assert presented_token(Presented(authorization=(header,))) == token


def test_a_rate_allows_a_burst_then_one_per_interval() -> None:
    now = [0.0]
    rates = RateLimits(clock=lambda: now[0])
    rate = Rate(3, 60)
    for _ in range(3):
        rates.take("ci", rate)
    with pytest.raises(TooManyRequests) as caught:
        rates.take("ci", rate)
    assert caught.value.retry_after == 20
    rates.take("other", rate)  # per token
    now[0] = 20.0
    rates.take("ci", rate)
    with pytest.raises(TooManyRequests):
        rates.take("ci", rate)


def test_a_rate_counts_messages_all_or_none() -> None:
    now = [0.0]
    rates = RateLimits(clock=lambda: now[0])
    rate = Rate(6, 60)
    rates.take("ci", rate, 5)
    with pytest.raises(TooManyRequests) as caught:  # one left: five would exceed it
        rates.take("ci", rate, 5)
    assert caught.value.retry_after == 40  # four more have come back by then
    rates.take("ci", rate, 1)  # the refusal took nothing
    with pytest.raises(TooManyRequests):
        rates.take("ci", rate, 1)
    with pytest.raises(Unprocessable) as never:
        rates.take("other", rate, 7)
    assert never.value.code == "exceeds_rate"
    now[0] = 60.0
    rates.take("ci", rate, 6)


@pytest.fixture(scope="module")
def templates() -> TemplateSet:
    return TemplateSet.load(None)


@pytest.fixture
def live(tmp_path: Path, templates: TemplateSet) -> tuple[LiveConfig, str]:
    pw = secret_file(tmp_path, "pw", "hunter2")
    token, entry = token_entry(JID, to=["ops@example.org"])
    secrets = {verify: secret_file(tmp_path, verify, text) for verify, text in (
        ("github", "gh"), ("gitea", "gt"), ("gitlab", "gl"), ("grafana", "gr"),
        ("standard-webhooks", "whsec_" + base64.b64encode(KEY).decode()))}
    hooks = {verify: {"account": JID, "to": ["ops@example.org"], "verify": verify,
                      "secret_file": str(path), "template": "github"}
             for verify, path in secrets.items()}
    path = tmp_path / "gw.toml"
    path.write_text(toml({"accounts": {JID: {"password_file": str(pw)}},
                          "tokens": {"ci": entry}, "webhooks": hooks}))
    cfg = config.load({"domain": ["example.org"]}, environ={}, config_file=path)
    return LiveConfig(cfg, templates), token


def test_a_token_sends_as_its_account_within_its_scope(live: tuple[LiveConfig, str]) -> None:
    holder, token = live
    sender = TokenScheme(holder).authenticate(Presented(authorization=(f"Bearer {token}",)))
    assert sender is not None
    assert (sender.jid, sender.password, sender.via) == (JID, "hunter2", "token:ci")
    assert sender.scope.to == frozenset({"ops@example.org"})
    with pytest.raises(CredentialsRefused) as caught:
        TokenScheme(holder).authenticate(Presented(authorization=("Bearer xpt_nope",)))
    assert caught.value.subject == "token" and "xpt_nope" not in caught.value.message


def presented(name: str, headers: dict[str, str], body: bytes = BODY) -> Presented:
    return Presented(path=f"/hooks/{name}", headers=CIMultiDict(headers), body=body)


def signed(verify: str, body: bytes = BODY, stamp: float = NOW) -> dict[str, str]:
    """Headers that prove ``body`` for the fixture's webhook ``verify``."""
    ts = str(int(stamp))
    return {
        "github": {"X-Hub-Signature-256": "sha256=" + hex_hmac("gh", body)},
        "gitea": {"X-Forgejo-Signature": hex_hmac("gt", body)},
        "gitlab": {"X-Gitlab-Token": "gl"},
        "grafana": {"X-Grafana-Alerting-Signature": hex_hmac("gr", ts.encode() + b":" + body),
                    "X-Grafana-Alerting-Signature-Timestamp": ts},
        "standard-webhooks": {"webhook-id": "msg_1", "webhook-timestamp": ts,
                              "webhook-signature": "v1,bm9wZQ== " + standard_signature(
                                  KEY, "msg_1", ts, body)},
    }[verify]


VERIFY = ("github", "gitea", "gitlab", "grafana", "standard-webhooks")


@pytest.mark.parametrize("verify", VERIFY)
def test_every_scheme_accepts_its_own_proof(live: tuple[LiveConfig, str], verify: str) -> None:
    sender = WebhookScheme(live[0], clock=lambda: NOW).authenticate(
        presented(verify, signed(verify)))
    assert sender is not None and sender.via == f"webhook:{verify}"


@pytest.mark.parametrize("verify", [v for v in VERIFY if v != "gitlab"])
def test_every_scheme_refuses_another_body(live: tuple[LiveConfig, str], verify: str) -> None:
    with pytest.raises(CredentialsRefused) as caught:
        WebhookScheme(live[0], clock=lambda: NOW).authenticate(
            presented(verify, signed(verify), body=BODY + b" "))
    assert caught.value.code == "invalid_signature"
    assert caught.value.subject == f"webhook:{verify}"


@pytest.mark.parametrize("verify", VERIFY)
def test_every_scheme_refuses_a_missing_proof(live: tuple[LiveConfig, str],
                                              verify: str) -> None:
    with pytest.raises(CredentialsRefused) as caught:
        WebhookScheme(live[0], clock=lambda: NOW).authenticate(presented(verify, {}))
    assert caught.value.code == "missing_signature"


@pytest.mark.parametrize("verify", ["grafana", "standard-webhooks"])
@pytest.mark.parametrize("skew", [-301, 301])
def test_timed_schemes_refuse_stale_or_future_timestamps(live: tuple[LiveConfig, str],
                                                         verify: str, skew: int) -> None:
    headers = signed(verify, stamp=NOW + skew)
    with pytest.raises(CredentialsRefused) as caught:
        WebhookScheme(live[0], clock=lambda: NOW).authenticate(presented(verify, headers))
    assert caught.value.code == "stale_signature"


def test_grafana_without_a_timestamp_signs_the_body_alone(
        live: tuple[LiveConfig, str]) -> None:
    headers = {"X-Grafana-Alerting-Signature": hex_hmac("gr", BODY)}
    assert WebhookScheme(live[0]).authenticate(presented("grafana", headers)) is not None


def test_other_paths_are_not_claimed_and_unknown_hooks_are_404(
        live: tuple[LiveConfig, str]) -> None:
    scheme = WebhookScheme(live[0])
    assert scheme.authenticate(Presented(path="/msg/hooks/github")) is None
    with pytest.raises(NotFound):
        scheme.authenticate(Presented(path="/hooks/nope"))


@pytest.mark.parametrize(("headers", "found"), [
    ({"X-GitHub-Delivery": "72d3162e"}, "72d3162e"), ({"X-Gitlab-Event-UUID": "u-1"}, "u-1"),
    ({"webhook-id": "msg_2"}, "msg_2"), ({"X-GitHub-Delivery": "x" * 300}, None), ({}, None),
])
def test_delivery_ids(headers: dict[str, Any], found: str | None) -> None:
    assert delivery_id(CIMultiDict(headers)) == found


EVERY_ID = {"X-GitHub-Delivery": "gh-1", "X-Gitea-Delivery": "gt-1",
            "X-Forgejo-Delivery": "fj-1", "X-Gitlab-Event-UUID": "gl-1",
            "webhook-id": "forged", "Idempotency-Key": "k1"}
GRAFANA_SIGNED = hashlib.sha256(f"{int(NOW)}:".encode() + BODY).hexdigest()


@pytest.mark.parametrize(("verify", "extra", "delivery"), [
    ("github", EVERY_ID, "gh-1"), ("github", {"webhook-id": "w"}, None),
    ("gitea", EVERY_ID, "gt-1"), ("gitea", {"X-Forgejo-Delivery": "fj-1"}, "fj-1"),
    ("gitlab", EVERY_ID, "gl-1"),
    ("grafana", EVERY_ID, "signed:" + GRAFANA_SIGNED),
    ("standard-webhooks", EVERY_ID | {"webhook-id": "msg_1"}, "msg_1"),
])
def test_each_scheme_names_the_delivery_by_its_own_id_only(
        live: tuple[LiveConfig, str], verify: str, extra: dict[str, str],
        delivery: str | None) -> None:
    """Another tool's id header, or an Idempotency-Key, never names a delivery; for
    standard-webhooks the id is the signed one (a forged one fails the signature)."""
    scheme = WebhookScheme(live[0], clock=lambda: NOW)
    sender = scheme.authenticate(presented(verify, extra | signed(verify)))
    assert sender is not None and sender.webhook and sender.delivery == delivery


def test_a_standard_webhooks_id_is_named_as_signed(live: tuple[LiveConfig, str]) -> None:
    """A byte that is not UTF-8 is signed as its backslashed spelling: both spellings
    are one delivery, not two."""
    ts = str(int(NOW))
    found = set()
    for given in ("msg_\udc80", "msg_\\udc80"):  # as aiohttp decodes 0x80; the text
        headers = {"webhook-id": given, "webhook-timestamp": ts,
                   "webhook-signature": standard_signature(KEY, "msg_\\udc80", ts, BODY)}
        sender = WebhookScheme(live[0], clock=lambda: NOW).authenticate(
            presented("standard-webhooks", headers))
        assert sender is not None
        found.add(sender.delivery)
    assert found == {"msg_\\udc80"}


def test_a_grafana_delivery_without_its_timestamp_has_no_id(
        live: tuple[LiveConfig, str]) -> None:
    headers = {"X-Grafana-Alerting-Signature": hex_hmac("gr", BODY), **EVERY_ID}
    sender = WebhookScheme(live[0]).authenticate(presented("grafana", headers))
    assert sender is not None and sender.delivery is None


@pytest.mark.parametrize("query", [{"to": "x@example.org"}, {"x": ""}])
def test_a_query_string_is_refused_before_the_signature(
        live: tuple[LiveConfig, str], query: dict[str, str]) -> None:
    what = Presented(path="/hooks/github", headers=CIMultiDict(signed("github")), body=BODY,
                     query=query, query_string="&".join(f"{k}={v}" for k, v in query.items()))
    with pytest.raises(BadRequest) as caught:
        WebhookScheme(live[0]).authenticate(what)
    assert caught.value.code == "query_not_allowed"
    with pytest.raises(BadRequest):  # even one that parses to nothing
        WebhookScheme(live[0]).authenticate(Presented(path="/hooks/github", query_string="&"))


def test_the_digest_is_sha256_of_the_token() -> None:
    token, entry = token_entry(JID)
    assert entry["sha256"] == hashlib.sha256(token.encode()).hexdigest()
