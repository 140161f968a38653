"""The built-in templates against payloads written from each vendor's documented schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xmpp_post.templates import Rendered, TemplateSet

PAYLOADS = Path(__file__).parents[1] / "payloads"


@pytest.fixture(scope="module")
def templates() -> TemplateSet:
    return TemplateSet.load(None)


def payload(path: str) -> Any:
    return json.loads((PAYLOADS / path).read_text(encoding="utf-8"))


def render(templates: TemplateSet, name: str, path: str,
           headers: dict[str, str] | None = None) -> Rendered:
    return templates.render_sync(name, payload(path), headers or {}, {})


def body(templates: TemplateSet, name: str, path: str,
         headers: dict[str, str] | None = None) -> str:
    rendered = render(templates, name, path, headers)
    assert not rendered.skipped
    assert rendered.body is not None
    assert rendered.subject is None   # built-ins never set one: it would retitle a room
    return rendered.body


def first_line(text: str) -> str:
    return text.splitlines()[0]


def test_builtins_are_listed_with_descriptions_and_replies(templates: TemplateSet) -> None:
    assert templates.names() == ["alertmanager", "discord", "gitea", "github", "gitlab",
                                 "grafana", "slack"]
    assert all(templates.describe().values())
    assert templates.reply("slack") == "slack"
    assert templates.reply("discord") == "discord"
    assert templates.reply("github") == "json"


# Alertmanager and Grafana

def test_alertmanager_firing_group(templates: TemplateSet) -> None:
    text = body(templates, "alertmanager", "alertmanager/firing.json")
    assert first_line(text) == "*[FIRING:2]* HighLatency checkout"
    assert "job=api, severity=critical" in text
    assert "instance=api-1:9100 — p99 latency above 500ms on api-1" in text
    assert "has been 1.2s for 10 minutes" in text
    assert "since 2024-05-01 12:00 UTC" in text
    assert "https://prometheus.example.org/graph?" in text
    assert "*Resolved*" in text and "resolved 2024-05-01 11:55 UTC" in text
    assert "12 more alerts left out" in text
    assert "runbook: https://runbooks.example.org/high-latency" in text
    assert text.endswith("https://alertmanager.example.org")


def test_alertmanager_resolved_group(templates: TemplateSet) -> None:
    text = body(templates, "alertmanager", "alertmanager/resolved.json")
    assert first_line(text) == "*[RESOLVED]* DiskFull"
    assert "Disk /var almost full" in text
    assert "• instance=db-1" in text and "• instance=db-2" in text
    assert "resolved 2024-05-02 09:15 UTC" in text
    assert "left out" not in text
    assert "0001" not in text


def test_alertmanager_caps_a_long_list(templates: TemplateSet) -> None:
    data = payload("alertmanager/firing.json")
    alert = data["alerts"][0]
    data["alerts"] = [{**alert, "labels": {**alert["labels"], "instance": f"api-{i}"}}
                      for i in range(25)]
    text = templates.render_sync("alertmanager", data, {}, {}).body or ""
    assert first_line(text) == "*[FIRING:25]* HighLatency checkout"
    assert text.count("• instance=") == 10
    assert "… and 15 more" in text


def test_grafana_firing(templates: TemplateSet) -> None:
    text = body(templates, "grafana", "grafana/firing.json")
    assert first_line(text) == "*[FIRING:2] High memory usage Infra (blue)*"  # its title
    assert "Labels:" not in text  # Grafana's default message: the alerts below say it
    assert "zone=us-1 — Memory above 90% in zone us-1" in text
    assert "values: B=93.24, C=1" in text
    assert "https://grafana.example.org/d/mem01?viewPanel=4" in text
    assert "silence: https://grafana.example.org/alerting/silence/new" in text
    assert "since 2024-06-03 07:51 UTC" in text   # +02:00 shown in UTC
    # the eu-1 alert has no panel or dashboard: its rule's link instead
    assert "https://grafana.example.org/alerting/grafana/1afz29v7z/view" in text


def test_grafana_resolved(templates: TemplateSet) -> None:
    text = body(templates, "grafana", "grafana/resolved.json")
    assert first_line(text) == "*[RESOLVED] High memory usage Infra (blue us-1)*"
    assert "Memory above 90% in zone us-1" in text
    assert "resolved 2024-06-03 08:21 UTC" in text
    assert "silence:" not in text


def test_grafana_the_user_s_title_and_message_win(templates: TemplateSet) -> None:
    data = payload("grafana/firing.json") | {
        "title": "Memory: team blue\npaged", "message": "Memory is **high**.\n"
        "See [the board](https://grafana.example.org/d/mem01)\n\nCall Bob."}
    text = templates.render_sync("grafana", data, {}, {}).body or ""
    assert text.splitlines() == ["*Memory: team blue paged*", "Memory is *high*.",
                                 "See the board (https://grafana.example.org/d/mem01)", "",
                                 "Call Bob."]


def test_grafana_without_a_title_leads_with_the_alerts(templates: TemplateSet) -> None:
    data = {k: v for k, v in payload("grafana/firing.json").items() if k != "title"}
    text = templates.render_sync("grafana", data, {}, {}).body or ""
    assert first_line(text) == "*[FIRING:2]* High memory usage Infra"


def test_grafana_legacy_alerting_is_its_title_message_and_rule(templates: TemplateSet) -> None:
    data = {"title": "[Alerting] Test notification", "ruleName": "Test notification",
            "message": "Someone is testing the alert notification within Grafana.",
            "ruleUrl": "https://grafana.example.org/", "state": "alerting", "evalMatches": []}
    text = templates.render_sync("grafana", data, {}, {}).body or ""
    assert text.splitlines() == ["*[Alerting] Test notification*",
                                 "Someone is testing the alert notification within Grafana.",
                                 "https://grafana.example.org/"]


def test_alert_annotations_of_the_user_s_own_are_shown(templates: TemplateSet) -> None:
    alert = {"status": "firing", "labels": {"alertname": "KubeDown", "instance": "a"},
             "annotations": {"message": "The API is down\nfor 5 minutes",
                             "dashboard": "https://grafana.example.org/d/1"}}
    other = alert | {"labels": {"alertname": "KubeDown", "instance": "b"},
                     "annotations": {"message": "The API is down\nfor 5 minutes"}}
    data = {"status": "firing", "groupLabels": {"alertname": "KubeDown"},
            "commonLabels": {"alertname": "KubeDown"},
            "commonAnnotations": {"message": "The API is down\nfor 5 minutes"},
            "alerts": [alert, other]}
    text = templates.render_sync("alertmanager", data, {}, {}).body or ""
    assert text.splitlines()[:4] == ["*[FIRING:2]* KubeDown",
                                     "message: The API is down for 5 minutes",
                                     "• instance=a", "  dashboard: https://grafana.example.org/d/1"]
    assert text.count("The API is down") == 1  # said once, for the group


# GitHub

def github(templates: TemplateSet, event: str, path: str) -> str:
    return body(templates, "github", f"github/{path}.json", {"X-GitHub-Event": event})


def test_github_push(templates: TemplateSet) -> None:
    text = github(templates, "push", "push")
    assert first_line(text) == "*alice* pushed 3 commits to `main` of example/repo"
    assert "• `a10867b` Retry failed deliveries" in text
    assert "• `b20867b` Document the retry setting (Bob Builder)" in text
    assert "The relay now retries" not in text   # only each commit's title
    assert "https://github.com/example/repo/compare/6113728f27ae...0d1a26e67d8f" in text


def test_github_push_of_many_commits_is_capped(templates: TemplateSet) -> None:
    data = payload("github/push.json")
    data["commits"] = data["commits"] * 7
    text = templates.render_sync("github", data, {"X-GitHub-Event": "push"}, {}).body or ""
    assert "pushed 21 commits" in text
    assert text.count("• ") == 5 and "… and 16 more" in text


def test_github_pull_request_opened(templates: TemplateSet) -> None:
    text = github(templates, "pull_request", "pull_request_opened")
    assert first_line(text) == ("*carol* opened pull request #42 in example/repo: "
                                "Add webhook templates")
    assert "`templates` → `main`" in text
    assert "https://github.com/example/repo/pull/42" in text
    assert "> This adds *templates* for Alertmanager and GitHub." in text
    assert "Describe your change" not in text


def test_github_pull_request_merged(templates: TemplateSet) -> None:
    text = github(templates, "pull_request", "pull_request_merged")
    assert first_line(text) == ("*alice* merged pull request #42 in example/repo: "
                                "Add webhook templates")


def test_github_issue_opened_and_comment(templates: TemplateSet) -> None:
    text = github(templates, "issues", "issues_opened")
    assert first_line(text) == "*dave* opened issue #9 in example/repo: Webhook templates"
    assert "https://github.com/example/repo/issues/9" in text
    text = github(templates, "issue_comment", "issue_comment")
    assert first_line(text) == ("*bob* commented on pull request #42 in example/repo: "
                                "Add webhook templates")
    assert "> Looks good to me." in text
    assert "#issuecomment-1234567" in text


def test_github_release(templates: TemplateSet) -> None:
    text = github(templates, "release", "release_published")
    assert first_line(text) == ("*alice* published release `v1.4.0` of example/repo: "
                                "1.4: webhook templates")
    assert "https://github.com/example/repo/releases/tag/v1.4.0" in text
    assert "> *What's new*" in text


def test_github_workflow_run_without_a_name_shows_the_workflow(
        templates: TemplateSet) -> None:
    text = github(templates, "workflow_run", "workflow_run_completed")
    assert first_line(text) == ("Workflow *CI* completed: *failure* on `main` of "
                                "example/repo")
    assert "Run #562" in text and "Retry failed deliveries" in text
    assert "https://github.com/example/repo/actions/runs/30433642" in text


def test_github_check_run(templates: TemplateSet) -> None:
    text = github(templates, "check_run", "check_run_completed")
    assert first_line(text) == ("Check *lint* completed: *success* on `templates` of "
                                "example/repo")
    assert "https://github.com/example/repo/runs/128620228" in text


def test_github_create_and_delete(templates: TemplateSet) -> None:
    assert first_line(github(templates, "create", "create")) == \
        "*bob* created branch `feature/retry` in example/repo"
    assert first_line(github(templates, "delete", "delete")) == \
        "*alice* deleted tag `v0.9.0-rc1` in example/repo"


def test_github_ping_sends_nothing(templates: TemplateSet) -> None:
    rendered = render(templates, "github", "github/ping.json", {"X-GitHub-Event": "ping"})
    assert rendered == Rendered(body=None, subject=None, skipped=True)


def test_github_other_events_get_one_line(templates: TemplateSet) -> None:
    text = github(templates, "star", "star_created")
    assert text == ("GitHub *star* (created) in example/repo by erin: "
                    "https://github.com/example/repo")
    text = body(templates, "github", "github/star_created.json")   # no event header
    assert text.startswith("GitHub *event* (created) in example/repo")


# GitLab

def gitlab(templates: TemplateSet, event: str, path: str) -> str:
    return body(templates, "gitlab", f"gitlab/{path}.json", {"X-Gitlab-Event": event})


def test_gitlab_push(templates: TemplateSet) -> None:
    text = gitlab(templates, "Push Hook", "push")
    assert first_line(text) == "*jsmith* pushed 4 commits to `main` of mike/diaspora"
    assert "• `b6568db` Update Catalan translation to e38cb41. (Jordi Mallach)" in text
    assert "… and 2 more" in text
    assert ("https://gitlab.example.com/mike/diaspora/-/compare/95790bf891e76fee5e1747ab589"
            "903a6a1f80f22...da1560886d4f094c3e6c9ef40349f7d38b5d27d7") in text


def test_gitlab_tag_push(templates: TemplateSet) -> None:
    text = gitlab(templates, "Tag Push Hook", "tag_push")
    assert first_line(text) == "*jsmith* pushed tag `v1.0.0` to jsmith/example"
    assert "https://gitlab.example.com/jsmith/example/-/tags/v1.0.0" in text


def test_gitlab_merge_request_issue_and_note(templates: TemplateSet) -> None:
    text = gitlab(templates, "Merge Request Hook", "merge_request")
    assert first_line(text) == "*root* opened merge request !1 in gitlabhq/gitlab-test: MS-Viewport"
    assert "`ms-viewport` → `master`" in text
    assert "/-/merge_requests/1" in text
    text = gitlab(templates, "Issue Hook", "issue")
    assert first_line(text) == ("*root* opened issue #23 in gitlabhq/gitlab-test: "
                                "New API: create/update/delete file")
    text = gitlab(templates, "Note Hook", "note")
    assert first_line(text) == ("*root* commented on merge request !1 in gitlabhq/gitlab-test:"
                                " Tempora et eos debitis quae laborum et.")
    assert "> Hello world, this needs a *second* look." in text


def test_gitlab_pipeline_and_job(templates: TemplateSet) -> None:
    text = gitlab(templates, "Pipeline Hook", "pipeline")
    assert first_line(text) == ("Pipeline #3 *failed* on `master` of gitlab-org/gitlab-test "
                                "after 4m 12s")
    assert "Failed: test-build (test)" in text
    assert "https://gitlab.example.com/gitlab-org/gitlab-test/-/pipelines/31" in text
    text = gitlab(templates, "Job Hook", "job")
    assert first_line(text) == ("Job *test* (test) *failed* on `gitlab-script-trigger` of "
                                "gitlab-org/gitlab-test after 2m 11s")
    assert "Reason: script failure" in text
    assert "https://gitlab.example.com/gitlab-org/gitlab-test/-/jobs/1977" in text


def test_gitlab_release(templates: TemplateSet) -> None:
    text = gitlab(templates, "Release Hook", "release")
    assert first_line(text) == "Release `v1.1` of gitlab-org/release-webhook-example created"
    assert "/-/releases/v1.1" in text


def test_gitlab_event_from_header_alone(templates: TemplateSet) -> None:
    data = payload("gitlab/push.json")
    del data["object_kind"]
    text = templates.render_sync("gitlab", data, {"X-Gitlab-Event": "Push Hook"}, {}).body
    assert text is not None and text.startswith("*jsmith* pushed 4 commits")


# Gitea and Forgejo

@pytest.mark.parametrize("header", ["X-Gitea-Event", "X-Forgejo-Event"])
def test_gitea_and_forgejo_push(templates: TemplateSet, header: str) -> None:
    text = body(templates, "gitea", "gitea/push.json", {header: "push"})
    assert first_line(text) == "*gitea* pushed 2 commits to `develop` of gitea/webhooks"
    assert "• `a0ff67d` Second commit (Frank)" in text
    assert "https://git.example.org/gitea/webhooks/compare/28e1879" in text


def test_gitea_pull_request_merged(templates: TemplateSet) -> None:
    text = body(templates, "gitea", "gitea/pull_request.json",
                {"X-Forgejo-Event": "pull_request"})
    assert first_line(text) == ("*gitea* merged pull request #7 in gitea/webhooks: "
                                "Add a health check")
    assert "https://git.example.org/gitea/webhooks/pulls/7" in text


def test_forgejo_other_event_names_forgejo(templates: TemplateSet) -> None:
    text = body(templates, "gitea", "gitea/push.json", {"X-Forgejo-Event": "fork"})
    assert text.startswith("Forgejo *fork* in gitea/webhooks by gitea")


# Slack, Mattermost and Discord

def test_slack_top_level_text(templates: TemplateSet) -> None:
    text = body(templates, "slack", "slack/text.json")
    assert text == ("Deploy of build 881 (https://ci.example.org/runs/881) to *production* "
                    "finished & healthy. cc @oncall")


def test_slack_attachments_only_as_alertmanager_sends(templates: TemplateSet) -> None:
    text = body(templates, "slack", "slack/attachments_alertmanager.json")
    assert first_line(text) == "*[FIRING:2] InstanceDown (node)*"
    assert "https://alertmanager.example.org/#/alerts?receiver=slack" in text
    assert "node-3 has been unreachable for 5 minutes" in text
    assert "| https://" not in text   # the fallback is not repeated


def test_slack_attachment_with_only_a_fallback_and_fields(templates: TemplateSet) -> None:
    data = {"attachments": [{"fallback": "Build 7 passed"},
                            {"fields": [{"title": "Env", "value": "prod", "short": True}]}]}
    text = templates.render_sync("slack", data, {}, {}).body
    assert text == "Build 7 passed\n\n*Env*: prod"


def test_slack_link_buttons_are_shown(templates: TemplateSet) -> None:
    actions = [{"type": "button", "text": "Runbook", "url": "https://runbooks.example.org/d"},
               {"type": "button", "text": "No link"}, "junk",
               {"type": "button", "url": "https://alertmanager.example.org/silence"}]
    data = {"attachments": [{"title": "DiskFull", "text": "disk", "actions": actions}]}
    text = templates.render_sync("slack", data, {}, {}).body or ""
    assert "Runbook: https://runbooks.example.org/d\nhttps://alertmanager.example.org/" \
        "silence" in text and "No link" not in text


def test_slack_blocks(templates: TemplateSet) -> None:
    text = body(templates, "slack", "slack/blocks.json")
    assert first_line(text) == "*Nightly backup finished*"
    assert "report (https://backup.example.org/runs/331)" in text
    assert "41 GB" in text and "backup-runner on host-7" in text


def test_discord_content_and_embeds(templates: TemplateSet) -> None:
    text = body(templates, "discord", "discord/embeds.json")
    assert first_line(text) == "*Site down*: see the embed"
    assert "*www.example.org is down*" in text
    assert "https://status.example.org/incidents/55" in text
    assert "Runbook (https://runbooks.example.org/www)" in text
    assert "*Checks failed*: 12" in text and "Uptime monitor" in text


# Size: whatever the payload, a built-in's message stays small enough for any XMPP server.

MAX_MESSAGE = 20_000
EVENT_HEADERS = {"github": "X-GitHub-Event", "gitlab": "X-Gitlab-Event",
                 "gitea": "X-Gitea-Event"}


def inflated(value: Any, text: str) -> Any:
    """``value`` with every string replaced by ``text`` and every list made 30 long."""
    if isinstance(value, dict):
        return {key: inflated(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [inflated(item, text) for item in (value * 30)[:30]]
    return text if isinstance(value, str) else value


@pytest.mark.parametrize("path", sorted(p.relative_to(PAYLOADS).as_posix()
                                        for p in PAYLOADS.glob("*/*.json")))
def test_messages_are_cut_to_a_bounded_length(templates: TemplateSet, path: str) -> None:
    name = path.split("/")[0]
    data = inflated(payload(path), "&<x> " * 300)   # 1500 characters that XML escapes
    event = {"github": "push", "gitlab": "Push Hook", "gitea": "push"}.get(name, "")
    headers = {EVENT_HEADERS[name]: event} if name in EVENT_HEADERS else {}
    rendered = templates.render_sync(name, data, headers, {})
    assert rendered.body is not None and len(rendered.body) <= MAX_MESSAGE


def test_a_long_slack_text_is_cut_not_refused(templates: TemplateSet) -> None:
    text = templates.render_sync("slack", {"text": "line\n" * 50_000}, {}, {}).body or ""
    assert len(text) == MAX_MESSAGE and text.endswith("…")
