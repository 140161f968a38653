"""Webhook templates end to end: a tool's own payload, posted with ``?template=NAME`` to a
gateway in front of the real Prosody, arrives as a readable message at a real client."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory, basic
from tests.helpers.rooms import owned_room
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.service import Gateway

PAYLOADS = Path(__file__).parents[1] / "payloads"
JSON = "application/json"

# (template, payload, event header, facts the received text must hold)
CASES: list[tuple[str, str, dict[str, str], list[str]]] = [
    ("alertmanager", "alertmanager/firing.json", {}, [
        "*[FIRING:2]* HighLatency checkout", "p99 latency above 500ms on api-1",
        "since 2024-05-01 12:00 UTC", "https://prometheus.example.org/graph?",
        "12 more alerts left out", "https://alertmanager.example.org"]),
    ("alertmanager", "alertmanager/resolved.json", {}, [
        "*[RESOLVED]* DiskFull", "Disk /var almost full", "resolved 2024-05-02 09:15 UTC"]),
    ("grafana", "grafana/firing.json", {}, [
        "*[FIRING:2] High memory usage Infra (blue)*", "Memory above 90% in zone us-1",
        "values: B=93.24, C=1", "https://grafana.example.org/d/mem01?viewPanel=4",
        "silence: https://grafana.example.org/alerting/silence/new"]),
    ("grafana", "grafana/resolved.json", {}, [
        "*[RESOLVED] High memory usage Infra (blue us-1)*", "resolved 2024-06-03 08:21 UTC"]),
    ("github", "github/push.json", {"X-GitHub-Event": "push"}, [
        "*alice* pushed 3 commits to `main` of example/repo",
        "• `a10867b` Retry failed deliveries",
        "https://github.com/example/repo/compare/6113728f27ae...0d1a26e67d8f"]),
    ("github", "github/pull_request_opened.json", {"X-GitHub-Event": "pull_request"}, [
        "opened pull request #42 in example/repo: Add webhook templates",
        "https://github.com/example/repo/pull/42"]),
    ("github", "github/pull_request_merged.json", {"X-GitHub-Event": "pull_request"}, [
        "*alice* merged pull request #42"]),
    ("github", "github/issues_opened.json", {"X-GitHub-Event": "issues"}, [
        "opened issue #9 in example/repo: Webhook templates",
        "https://github.com/example/repo/issues/9"]),
    ("github", "github/issue_comment.json", {"X-GitHub-Event": "issue_comment"}, [
        "*bob* commented on pull request #42", "> Looks good to me."]),
    ("github", "github/release_published.json", {"X-GitHub-Event": "release"}, [
        "published release `v1.4.0` of example/repo",
        "https://github.com/example/repo/releases/tag/v1.4.0"]),
    ("github", "github/workflow_run_completed.json", {"X-GitHub-Event": "workflow_run"}, [
        "Workflow *CI* completed: *failure* on `main`",
        "https://github.com/example/repo/actions/runs/30433642"]),
    ("github", "github/check_run_completed.json", {"X-GitHub-Event": "check_run"}, [
        "Check *lint* completed: *success*", "https://github.com/example/repo/runs/128620228"]),
    ("github", "github/create.json", {"X-GitHub-Event": "create"}, [
        "*bob* created branch `feature/retry` in example/repo"]),
    ("github", "github/delete.json", {"X-GitHub-Event": "delete"}, [
        "*alice* deleted tag `v0.9.0-rc1` in example/repo"]),
    ("github", "github/star_created.json", {"X-GitHub-Event": "star"}, [
        "GitHub *star* (created) in example/repo by erin"]),
    ("gitlab", "gitlab/push.json", {"X-Gitlab-Event": "Push Hook"}, [
        "*jsmith* pushed 4 commits to `main` of mike/diaspora", "… and 2 more"]),
    ("gitlab", "gitlab/tag_push.json", {"X-Gitlab-Event": "Tag Push Hook"}, [
        "pushed tag `v1.0.0` to jsmith/example"]),
    ("gitlab", "gitlab/merge_request.json", {"X-Gitlab-Event": "Merge Request Hook"}, [
        "opened merge request !1 in gitlabhq/gitlab-test: MS-Viewport", "/-/merge_requests/1"]),
    ("gitlab", "gitlab/issue.json", {"X-Gitlab-Event": "Issue Hook"}, [
        "opened issue #23 in gitlabhq/gitlab-test"]),
    ("gitlab", "gitlab/note.json", {"X-Gitlab-Event": "Note Hook"}, [
        "commented on merge request !1", "> Hello world, this needs a *second* look."]),
    ("gitlab", "gitlab/pipeline.json", {"X-Gitlab-Event": "Pipeline Hook"}, [
        "Pipeline #3 *failed* on `master`", "Failed: test-build (test)"]),
    ("gitlab", "gitlab/job.json", {"X-Gitlab-Event": "Job Hook"}, [
        "Job *test* (test) *failed*", "Reason: script failure"]),
    ("gitlab", "gitlab/release.json", {"X-Gitlab-Event": "Release Hook"}, [
        "Release `v1.1` of gitlab-org/release-webhook-example created"]),
    ("gitea", "gitea/push.json", {"X-Gitea-Event": "push"}, [
        "*gitea* pushed 2 commits to `develop` of gitea/webhooks"]),
    ("gitea", "gitea/pull_request.json", {"X-Forgejo-Event": "pull_request"}, [
        "*gitea* merged pull request #7 in gitea/webhooks: Add a health check"]),
    ("slack", "slack/text.json", {}, [
        "Deploy of build 881 (https://ci.example.org/runs/881) to *production* finished & "
        "healthy. cc @oncall"]),
    ("slack", "slack/attachments_alertmanager.json", {}, [
        "*[FIRING:2] InstanceDown (node)*", "node-3 has been unreachable for 5 minutes"]),
    ("slack", "slack/blocks.json", {}, ["*Nightly backup finished*", "41 GB"]),
    ("discord", "discord/embeds.json", {}, [
        "*Site down*: see the embed", "https://status.example.org/incidents/55"]),
]
SUCCESS = {"slack": 200, "discord": 204}


async def test_every_builtin_delivers_the_key_facts(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    for template, path, headers, facts in CASES:
        reply = await http.post(gateway, f"/msg/{bob.local}?template={template}",
                                (PAYLOADS / path).read_bytes(), sender=alice,
                                content_type=JSON, headers=headers)
        assert reply.status == SUCCESS.get(template, 201), (path, reply.text)
        got = await inbox.next()
        assert got.sender.startswith(alice.jid + "/") and got.type == "chat"
        for fact in facts:
            assert fact in got.body, (path, fact, got.body)
        assert "<subject" not in got.xml  # built-ins never set one: it would retitle a room


async def test_reply_contracts_of_slack_and_discord(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    form = urlencode({"payload": json.dumps({"text": "from a Mattermost-style form"})})
    reply = await http.post(gateway, f"/msg/{bob.local}?template=slack", form, sender=alice,
                            content_type="application/x-www-form-urlencoded")
    assert (reply.status, reply.text) == (200, "ok")
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert (await inbox.next()).body == "from a Mattermost-style form"
    reply = await http.post(gateway, f"/msg/{bob.local}?template=discord",
                            json.dumps({"content": "hello from a Discord sender"}),
                            sender=alice, content_type=JSON)
    assert (reply.status, reply.text) == (204, "")
    assert (await inbox.next()).body == "hello from a Discord sender"
    reply = await http.post(gateway, f"/msg/{bob.local}?template=slack",
                            json.dumps({"text": "x"}), sender=alice, password="wrong",
                            content_type=JSON)
    assert reply.status == 401 and reply.json["error"] == "invalid_credentials"


async def test_a_room_and_a_person_with_query_fields_and_a_skipped_ping(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, prosody: ProsodyServer) -> None:
    room, owner = await owned_room(prosody, account, receiver)
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    data = (PAYLOADS / "alertmanager/firing.json").read_bytes()
    reply = await http.post(gateway, f"/msg?template=alertmanager&to={room}&to={bob.local}"
                            "&nick=alerts&thread=incident-7", data, sender=alice,
                            content_type=JSON)
    assert reply.status == 201, reply.text
    assert [r["status"] for r in reply.json["results"]] == [201, 201]
    in_room, direct = await owner.next(), await inbox.next()
    assert (in_room.sender, in_room.type) == (f"{room}/alerts", "groupchat")
    assert direct.type == "chat" and direct.thread == "incident-7"
    assert in_room.body == direct.body and direct.body.startswith("*[FIRING:2]*")
    ping = (PAYLOADS / "github/ping.json").read_bytes()
    reply = await http.post(gateway, f"/msg/{bob.local}?template=github", ping, sender=alice,
                            content_type=JSON, headers={"X-GitHub-Event": "ping"})
    assert (reply.status, reply.json) == (200, {"sent": 0, "skipped": True,
                                                "template": "github"})
    reply = await http.post(gateway, f"/msg/{bob.local}?template=slack&subject=Deploys",
                            json.dumps({"text": "after the ping"}), sender=alice,
                            content_type=JSON)
    assert reply.status == 200
    got = await inbox.next()  # the ping sent nothing: this is the next message
    assert (got.body, got.subject) == ("after the ping", "Deploys")


async def test_a_github_redelivery_is_sent_once(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    headers = {"X-GitHub-Event": "create", "X-GitHub-Delivery": "b2f7c1e0-0001"}
    data = (PAYLOADS / "github/create.json").read_bytes()
    first = await http.post(gateway, f"/msg/{bob.local}?template=github", data,
                            sender=alice, content_type=JSON, headers=headers)
    again = await http.post(gateway, f"/msg/{bob.local}?template=github", data,
                            sender=alice, content_type=JSON, headers=headers)
    assert first.status == again.status == 201 and first.json == again.json
    assert again.headers["Idempotent-Replayed"] == "true"
    reply = await http.post(gateway, f"/msg/{bob.local}?template=slack",
                            json.dumps({"text": "marker"}), sender=alice, content_type=JSON)
    assert reply.status == 200
    assert [(await inbox.next()).body.startswith("*bob* created"),
            (await inbox.next()).body] == [True, "marker"]


USER_TEMPLATES = {
    "deploy.j2": '{#\nDeploys from our CI.\n#}\n{% do set_subject("Deploy") %}'
                 '{{ payload.service|bold }} {{ payload.version|code }} is live '
                 'on {{ query.env or "staging" }}\n',
    "forever.j2": "{% for i in range(10000) %}{% for j in range(10000) %}{{ '' }}"
                  "{% endfor %}{% endfor %}",
    "huge.j2": "{{ 'x' * 10000000 }}",
    "internals.j2": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "attr.j2": "{{ payload|attr('__class__') }}",
    "format.j2": "{{ 'a{0.__class__}'.format(payload) }}",
    "range.j2": "{{ range(10 ** 12)|list|length }}",
    "typo.j2": "first line\n{{ payload.count + 'x' }}\n",
    "nothing.j2": "{{ payload.missing }}\n",
}


async def test_user_templates_and_the_sandbox(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, tmp_path: Path) -> None:
    for name, text in USER_TEMPLATES.items():
        (tmp_path / name).write_text(text)
    gateway = await start_gateway(template_dir=str(tmp_path))
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    options = await http.request("OPTIONS", gateway.url + "/msg")
    assert options.json["templates"]["deploy"] == "Deploys from our CI."
    for name in ("forever", "huge", "internals", "attr", "format", "range", "typo"):
        reply = await http.post(gateway, f"/msg/{bob.local}?template={name}",
                                json.dumps({"count": 1}), sender=alice, content_type=JSON)
        assert (reply.status, reply.json["error"]) == (422, "template_error"), reply.text
        assert f"template {name!r}" in reply.json["message"]
    reply = await http.post(gateway, f"/msg/{bob.local}?template=typo", "{}", sender=alice,
                            content_type=JSON)
    assert "line 2" in reply.json["message"]
    reply = await http.post(gateway, f"/msg/{bob.local}?template=nothing", "{}",
                            sender=alice, content_type=JSON)
    assert (reply.status, reply.json["error"]) == (422, "missing_body")
    # The gateway kept serving: a good template still delivers.
    reply = await http.post(gateway, f"/msg/{bob.local}?template=deploy&env=prod",
                            json.dumps({"service": "api", "version": "2.1"}), sender=alice,
                            content_type=JSON)
    assert reply.status == 201, reply.text
    got = await inbox.next()
    assert (got.body, got.subject) == ("*api* `2.1` is live on prod", "Deploy")
    assert inbox.pending() == []


async def test_slow_templates_do_not_hold_up_other_requests(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, tmp_path: Path) -> None:
    # Slow within every limit but time: each render runs until its 2 s are up.
    (tmp_path / "slow.j2").write_text(
        "{% for i in range(10000) %}{% set n = payload|wordcount %}{% endfor %}done")
    gateway = await start_gateway(template_dir=str(tmp_path))
    alice, carol, bob = account("alice"), account("carol"), account("bob")
    inbox = await receiver(bob)
    words = json.dumps("a b " * 25_000)
    loops = [asyncio.ensure_future(http.post(
        gateway, f"/msg/{bob.local}?template=slow", words, sender=alice, content_type=JSON))
        for _ in range(8)]
    # carol's first request logs in (a password hash in a worker thread) meanwhile
    reply = await http.post(gateway, f"/msg/{bob.local}", "while templates loop",
                            sender=carol)
    assert reply.status == 201, reply.text
    assert (await inbox.next()).body == "while templates loop"
    assert {(r.status, r.json["error"]) for r in await asyncio.gather(*loops)} == \
        {(422, "template_error")}


def test_a_template_that_does_not_compile_stops_the_gateway_at_start(
        prosody: ProsodyServer, tmp_path: Path) -> None:
    (tmp_path / "ok.j2").write_text("fine")
    (tmp_path / "bad.j2").write_text("line one\n{% for x in %}\n")
    run = subprocess.run(
        [sys.executable, "-m", "xmpp_post", "serve", "--domain", prosody.domain,
         "--listen", "127.0.0.1:0", "--template-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "template_dir" in run.stderr and "bad.j2:2" in run.stderr


async def test_a_large_push_within_max_template_body(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    data = json.loads((PAYLOADS / "github/push.json").read_text())
    commit = data["commits"][0]
    count = 900 * 1024 // len(json.dumps(commit))  # near max_template_body (1 MiB)
    data["commits"] = [{**commit, "id": f"{i:040x}"} for i in range(count)]
    body = json.dumps(data)
    assert 64 * 1024 < len(body) < 1024 * 1024  # over max_body, within max_template_body
    reply = await http.post(gateway, f"/msg/{bob.local}?template=github", body, sender=alice,
                            content_type=JSON, headers={"X-GitHub-Event": "push"})
    assert reply.status == 201, reply.text
    got = await inbox.next()
    assert f"pushed {count} commits" in got.body and f"… and {count - 5} more" in got.body
    assert len(got.body) < 2000


async def test_credentials_in_the_query_never_reach_a_template(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        receiver: ReceiverFactory, tmp_path: Path) -> None:
    # issue 19, 6: ntfy's ?auth= carries the Authorization header in base64.
    (tmp_path / "echo.j2").write_text("{{ query|pairs }}")
    gateway = await start_gateway(template_dir=str(tmp_path))
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    auth = base64.urlsafe_b64encode(basic(alice.jid, alice.password).encode()).decode()
    secrets = {"auth": auth, "Authorization": auth, "room_password": "r00m-pw",
               "token": "tk-0123", "access_token": "at-0123", "password": "pw-0123"}
    reply = await http.post(gateway, f"/msg/{bob.local}?template=echo&env=prod&"
                            + urlencode({"AUTH": auth, **secrets}), "{}", content_type=JSON)
    assert reply.status == 201, reply.text
    got = await inbox.next()
    assert got.body == "env=prod, template=echo"
    for secret in (auth, alice.password, *secrets.values()):
        assert secret not in got.body
