"""``POST /hooks/xph_…``: a webhook URL's delivery (Slack's or Mattermost's JSON, or a
form whose ``payload`` field holds it), rendered by its template and sent to its ``to``.

``auth.webhook_urls.WebhookUrlScheme`` has already found the webhook by its secret (in
``guards.limits``; an unknown one is 404 there). The answer on success is what Slack
and Mattermost answer, ``200 ok`` as text/plain, which is what their senders check: a
template whose ``reply`` is the gateway's own JSON answers so here; one that names
another tool's answer (``discord``: 204) keeps it. When some recipients failed the
answer is the gateway's 207 with one result each, which senders take for a failure.

What the tool may choose, and what it may not:

* the payload's ``channel`` picks one recipient when it names one of ``to``: the JID
  itself, or its local part when only one of ``to`` has it, with or without Slack's
  ``#`` or ``@`` (``#ops`` for ``ops@conference.example.org``); any other channel is
  ignored and the message goes to every one of ``to``;
* nothing in the query string: the URL is all the tool was given, so a query string is
  refused (400 ``query_not_allowed``), as on signed webhooks;
* a script that posts JSON as a form (``curl -d '{"text": "…"}'`` sends it as
  ``application/x-www-form-urlencoded``) or with no Content-Type is read as JSON, as
  Slack reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from xmpp_post.auth.webhook_urls import secret_digest, secret_of
from xmpp_post.errors import BadRequest, NotFound
from xmpp_post.fronts.templated import answer, render_messages
from xmpp_post.http.authentication import sender_of
from xmpp_post.http.context import CONFIG, LIVE, note
from xmpp_post.templates import Reply, parse_payload
from xmpp_post.templates.tool_payload import FORM_TYPE

ROUTE = "/hooks/xph_{secret}"
MAX_CHANNEL = 1024  # longer is no JID: not looked at


def chosen_recipients(payload: Any, to: Sequence[str]) -> tuple[str, ...]:
    """The one of ``to`` the payload's ``channel`` names, else all of ``to``."""
    everyone = tuple(to)
    channel = payload.get("channel") if isinstance(payload, dict) else None
    if not isinstance(channel, str) or len(channel) > MAX_CHANNEL:
        return everyone
    name = channel.strip().removeprefix("#").removeprefix("@").strip().lower()
    if not name:
        return everyone
    exact = [jid for jid in everyone if jid.lower() == name]
    if exact:
        return (exact[0],)
    local = [jid for jid in everyone if jid.partition("@")[0].lower() == name]
    return (local[0],) if len(local) == 1 else everyone


def read_payload(content_type: str | None, body: bytes) -> Any:
    """The JSON a Slack or Mattermost sender posted: ``templates.parse_payload``'s rules,
    and also JSON sent with no Content-Type or as a form (what ``curl -d`` does)."""
    kind = (content_type or "").partition(";")[0].strip().lower()
    if kind in ("", FORM_TYPE) and body.lstrip()[:1] in (b"{", b"["):
        content_type = "application/json"
    return parse_payload(content_type, body)


def success_reply(reply: Reply) -> Reply:
    """The template's answer, but Slack's where it names the gateway's own JSON."""
    return "slack" if reply == "json" else reply


async def post_webhook_url(request: web.Request) -> web.Response:
    sender = sender_of(request)  # 404 webhook_not_found for an unknown secret
    live = request.app[LIVE]
    secret = secret_of(request.path) or ""
    hook = live.webhook_urls.get(secret_digest(secret))
    if hook is None or hook.template is None:  # revoked by a reload just now
        raise NotFound("no webhook is configured at this URL", code="webhook_not_found")
    if request.query_string:
        raise BadRequest("a webhook URL takes no query parameters: everything is in the "
                         "webhook's configuration and the payload", code="query_not_allowed")
    note("sender", sender.jid)
    note("template", hook.template)
    templates = live.templates
    reply = success_reply(templates.reply(hook.template))
    config = request.app[CONFIG]
    payload = read_payload(request.headers.get("Content-Type"), await request.read())
    asked = await render_messages(
        templates, hook.template, payload, request.headers, {}, sender,
        recipients=chosen_recipients(payload, hook.to), default_nick=config.muc_nick,
        max_recipients=config.max_recipients)
    return await answer(request, sender, reply, asked, template=hook.template,
                        payload=payload)
