"""Any JSON into a built-in template gives a message or a 4xx GatewayError, never a crash."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import examples
from xmpp_post.errors import GatewayError
from xmpp_post.http.render import status_of
from xmpp_post.templates import TemplateSet

TEMPLATES = TemplateSet.load(None)
PAYLOADS = Path(__file__).parents[1] / "payloads"
FIXTURES = sorted(PAYLOADS.glob("*/*.json"))
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# The names the built-ins look for, so generated payloads reach deep into them.
KEYS = [
    "alerts", "status", "labels", "annotations", "summary", "description", "startsAt",
    "endsAt", "generatorURL", "groupLabels", "commonLabels", "commonAnnotations",
    "externalURL", "truncatedAlerts", "values", "alertname", "text", "attachments", "blocks",
    "fields", "title", "title_link", "value", "pretext", "fallback", "footer", "type",
    "elements", "ref", "commits", "id", "message", "author", "name", "username", "pusher",
    "sender", "login", "repository", "full_name", "html_url", "action", "pull_request",
    "number", "merged", "head", "base", "body", "issue", "comment", "release", "tag_name",
    "workflow_run", "workflow", "conclusion", "check_run", "created", "deleted", "forced",
    "compare", "total_commits", "items", "pop", "keys", "__class__",
]
EVENTS = ["push", "pull_request", "pull_request_review", "issues", "issue_comment",
          "release", "create", "delete", "workflow_run", "check_run", "ping", "star", ""]

scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
           | st.floats() | st.text(max_size=30)
           | st.sampled_from(["firing", "resolved", "refs/tags/v1", "refs/heads/main",
                              "completed", "closed", "opened", "section", "header",
                              "context", "0001-01-01T00:00:00Z", "<https://x|y>"]))
keys = st.sampled_from(KEYS) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(keys, children,
                                                                       max_size=8),
    max_leaves=40)


def check(name: str, payload: Any, headers: dict[str, str]) -> None:
    try:
        rendered = TEMPLATES.render_sync(name, payload, headers, {})
    except GatewayError as error:
        assert 400 <= status_of(error) < 500, error
        return
    if rendered.skipped:
        assert rendered.body is None
        return
    assert rendered.body and rendered.body.strip()
    assert not NOT_XML.search(rendered.body)


@pytest.mark.parametrize("name", ["slack", "github", "alertmanager", "grafana", "gitlab",
                                  "gitea", "discord"])
@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=json_values, event=st.sampled_from(EVENTS) | st.text(max_size=10))
def test_any_json_never_crashes_a_builtin(name: str, payload: Any, event: str) -> None:
    headers = {"X-GitHub-Event": event, "X-Gitea-Event": event, "X-Gitlab-Event": event}
    check(name, payload, headers)


def mutated(data: st.DataObject, value: Any) -> Any:
    """``value`` with some of its parts, at any depth, replaced by arbitrary JSON."""
    if data.draw(st.integers(0, 7)) == 0:
        return data.draw(json_values)
    if isinstance(value, dict):
        return {key: mutated(data, item) for key, item in value.items()}
    if isinstance(value, list):
        return [mutated(data, item) for item in value]
    return value


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda path: f"{path.parent.name}/{path.stem}")
@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_vendor_payloads_with_arbitrary_parts_never_crash(fixture: Path,
                                                          data: st.DataObject) -> None:
    vendor = fixture.parent.name
    event = {"pull_request_opened": "pull_request", "pull_request_merged": "pull_request",
             "issues_opened": "issues", "release_published": "release",
             "workflow_run_completed": "workflow_run", "check_run_completed": "check_run",
             "star_created": "star"}.get(fixture.stem, fixture.stem)
    headers = {"X-GitHub-Event": event, "X-Gitea-Event": event}
    check(vendor, mutated(data, json.loads(fixture.read_text(encoding="utf-8"))), headers)
