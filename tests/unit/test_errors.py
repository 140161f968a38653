"""The status of each refusal says whether a retry can help (http.errors' one table)."""

from __future__ import annotations

import pytest

from xmpp_post.errors import RecipientBusy
from xmpp_post.http.render import render_error, status_of
from xmpp_post.state import storable
from xmpp_post.xmpp.conditions import recipient_refused


@pytest.mark.parametrize(("condition", "error_type", "blocked", "status", "code"), [
    ("service-unavailable", "cancel", False, 404, "recipient_unavailable"),
    ("item-not-found", "cancel", False, 404, "recipient_not_found"),
    ("remote-server-not-found", "cancel", False, 404, "recipient_server_not_found"),
    ("jid-malformed", "modify", False, 400, "invalid_jid"),
    ("gone", "cancel", False, 410, "recipient_gone"),
    ("not-acceptable", "cancel", True, 403, "recipient_blocked"),
    ("forbidden", "auth", False, 403, "recipient_refused"),
    ("policy-violation", "modify", False, 403, "recipient_refused"),
    ("", "cancel", False, 403, "recipient_refused"),
    ("resource-constraint", "wait", False, 503, "recipient_busy"),
    ("service-unavailable", "wait", False, 503, "recipient_unavailable"),
    ("internal-server-error", "wait", False, 503, "recipient_busy"),
    ("remote-server-timeout", "wait", False, 504, "recipient_server_timeout"),
])
def test_recipient_refusals(condition: str, error_type: str, blocked: bool, status: int,
                            code: str) -> None:
    error = recipient_refused("bob@example.org", condition, error_type, "why" * 100,
                              blocked=blocked, retry_after=7)
    assert (status_of(error), error.code) == (status, code)
    assert "bob@example.org" in error.message and len(error.text) <= 200
    response = render_error(error)
    retry = isinstance(error, RecipientBusy)
    assert ("Retry-After" in response.headers) == retry
    assert retry == (status >= 500)
    # Only an answer a retry would not change may be stored for Idempotency-Key retries.
    assert storable(status) == (status in (400, 404, 410))
