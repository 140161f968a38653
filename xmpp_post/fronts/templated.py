"""Messages a template makes of a tool's own payload.

Three ways in: ``POST <base>/<recipient>[,…]?template=NAME`` and
``POST <base>?template=NAME&to=JID`` (``to`` repeatable); any ``/msg`` request
authenticated by a token that has a ``template`` (that one, always); and
``POST /hooks/NAME``, a signed webhook (its template, to its recipients: ``hooks``).
The body is what the tool sends anyway: JSON, or a form whose one field ``payload``
holds it (``templates.parse_payload``). The template renders it into the text of one
message, sent to every recipient exactly as a message posted to ``/msg`` would be:
rooms, several recipients and every check are the parser's (``payload.from_fields``),
made before rendering. The message fields in the query string (``type``, ``subject``,
``thread``, ``id``, ``lang``, ``oob_url``, ``receipt``, ``nick``, ``room_password``,
``encrypt``) win
over what the template sets; an empty ``subject=`` drops the template's subject. Every
query parameter, these and any other, is also the template's ``query``, except those
that carry a secret (``auth``, ``token``, ``room_password``…:
``templates.tool_payload.HIDDEN_QUERY``).

On success the tool gets the answer its template's ``reply:`` names (``SUCCESS_REPLIES``):
``json``, the gateway's own (201 with the receipt, or 201/207 with one result per
recipient); ``slack``, 200 ``text/plain`` ``ok`` (what Slack and Mattermost senders
check); ``discord``, 204. A template that calls ``skip()`` sends nothing and still
succeeds: 200 ``{"sent": 0, "skipped": true, "template": NAME}``, or the tool's own
answer. Errors keep the gateway's JSON shape whatever the template.

``render_messages`` is the step between a parsed payload and the messages to deliver,
with no request in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from xmpp_post import cpu
from xmpp_post.errors import NotFound
from xmpp_post.fronts import message_request as parse
from xmpp_post.fronts.delivery import OutcomesWatcher, deliver_and_answer, path_recipients
from xmpp_post.http.context import CONFIG, LIVE, SENT_WATCHERS, TemplatedSent, note
from xmpp_post.model import Outcome, OutgoingMessage, Receipt, Sender
from xmpp_post.templates import Reply, TemplateSet, parse_payload

# The message fields a query string may give a templated message; they win over the
# template's choices. ``to`` names recipients; ``body`` is the template's to make.
MESSAGE_FIELDS = ("type", "subject", "thread", "id", "lang", "oob_url", "receipt", "nick",
                  "room_password", "encrypt")
SKIPPED_TEXT = "(skipped)"  # stands in for the text when checking a skipped request
PARSED_ON_LOOP = 16 * 1024  # bytes of payload parsed on the event loop; more in a thread


@dataclass(frozen=True)
class SuccessReply:
    """The answer a sending tool expects when its message was sent."""

    status: int
    content_type: str | None
    body: bytes


# "json" is the gateway's own answer; Slack and Mattermost senders (Alertmanager's and
# Grafana's Slack notifiers, Apprise, ...) take only 200 "ok" for success, Discord's 204.
SUCCESS_REPLIES: Mapping[Reply, SuccessReply | None] = {
    "json": None,
    "slack": SuccessReply(200, "text/plain", b"ok"),
    "discord": SuccessReply(204, None, b""),
}


@dataclass(frozen=True)
class Skipped:
    """The template chose to send nothing (it called ``skip()``)."""

    template: str


async def render_messages(templates: TemplateSet, name: str, payload: Any,
                          headers: Mapping[str, str], query: Mapping[str, str],
                          sender: Sender, *, recipients: Sequence[str] = (),
                          path_recipients: str | None = None, default_nick: str = "",
                          max_recipients: int = parse.MAX_RECIPIENTS,
                          ) -> parse.MessageRequest | Skipped:
    """Render ``payload`` with template ``name`` into one message per recipient.

    ``query`` is what the template sees as ``query``; its ``MESSAGE_FIELDS`` win over
    the template's subject. ``recipients`` and ``path_recipients`` are as the parser
    takes them (``to`` values; a comma-separated path). The request is checked before
    rendering, as a message with that text would be (a wrong recipient is refused even
    when the template would send nothing), and so is the sender's scope. Raises the
    ClientError that says why not: 404 ``unknown_template``, 422 ``template_error`` or
    ``missing_body``, and every error a message posted to ``/msg`` can get.
    """
    templates.info(name)  # 404 unknown_template first
    fields = {field: query[field] for field in MESSAGE_FIELDS if field in query}

    def build(body: str, subject: str | None) -> parse.MessageRequest:
        chosen = {"subject": subject} if subject and "subject" not in fields else {}
        return parse.from_fields({**fields, **chosen, "body": body}, list(recipients),
                                 path_recipients, sender, default_nick=default_nick,
                                 max_recipients=max_recipients)

    checked = build(SKIPPED_TEXT, None)
    sender.scope.check_recipients([item.to for item in checked.items
                                   if isinstance(item, OutgoingMessage)])
    rendered = await templates.render(name, payload, headers, query)
    if rendered.skipped or rendered.body is None:
        return Skipped(name)
    return build(rendered.body, rendered.subject)


async def payload_of(content_type: str | None, body: bytes) -> Any:
    """The tool's payload, parsed in a worker thread when it is over ``PARSED_ON_LOOP``
    bytes (linear work, but a long one would hold the event loop)."""
    if len(body) > PARSED_ON_LOOP:
        return await cpu.run(parse_payload, content_type, body)
    return parse_payload(content_type, body)


async def post_templated(request: web.Request, sender: Sender, template: str, *,
                         recipients: Sequence[str] = (), query_string: str | None = None,
                         headers: Mapping[str, str] | None = None) -> web.Response:
    """Render the request's payload with ``template``, send it, answer as the template
    says. The recipients are the path's or ``?to=``'s, else ``recipients`` (a webhook's).
    ``query_string`` and ``headers``, when given, stand for the request's (a signed
    webhook's: only what the configuration and the tool's delivery say)."""
    config = request.app[CONFIG]
    templates = request.app[LIVE].templates
    note("template", template)
    reply = templates.reply(template)  # 404 unknown_template before anything is parsed
    query, to = parse.query_fields(request.query_string if query_string is None
                                   else query_string)
    path = path_recipients(request)
    body = await request.read()  # already read, within the limits, by guards.limits
    payload = await payload_of(request.headers.get("Content-Type"), body)
    asked = await render_messages(
        templates, template, payload, request.headers if headers is None else headers,
        query, sender,
        recipients=to or ([] if path else list(recipients)), path_recipients=path,
        default_nick=config.muc_nick, max_recipients=config.max_recipients)
    return await answer(request, sender, reply, asked, template=template, payload=payload)


async def answer(request: web.Request, sender: Sender, reply: Reply,
                 asked: parse.MessageRequest | Skipped, *, template: str,
                 payload: Any) -> web.Response:
    """Deliver what was rendered, and answer as the template's ``reply`` says; the
    ``SENT_WATCHERS`` are told what the XMPP server took (``template``, ``payload``)."""
    success = SUCCESS_REPLIES[reply]
    if isinstance(asked, Skipped):
        if success is not None:
            return _reply(success)
        return web.json_response({"sent": 0, "skipped": True, "template": asked.template},
                                 status=200)
    response = await deliver_and_answer(
        request, sender, asked.items, asked.several,
        sent=_watching(request, sender, template, payload, asked))
    if success is not None and response.status == 201:
        return _reply(success)
    return response  # 207: some recipients failed; the tool sees the results


def _watching(request: web.Request, sender: Sender, template: str, payload: Any,
              asked: parse.MessageRequest) -> OutcomesWatcher | None:
    """What tells the ``SENT_WATCHERS`` of the receipts; None when nobody watches."""
    watchers = request.app[SENT_WATCHERS]
    if not watchers:
        return None
    try:
        builtin = request.app[LIVE].templates.info(template).builtin
    except NotFound:  # a reload removed it since it rendered
        builtin = False
    body = next((item.body for item in asked.items if isinstance(item, OutgoingMessage)), "")

    async def sent(outcomes: list[Outcome]) -> None:
        receipts = tuple(outcome for outcome in outcomes if isinstance(outcome, Receipt))
        if receipts:
            event = TemplatedSent(sender.jid, template, builtin, payload, body, receipts)
            for watch in watchers:
                await watch(event)

    return sent


def _reply(success: SuccessReply) -> web.Response:
    return web.Response(status=success.status, body=success.body,
                        content_type=success.content_type)
