"""Messages a template renders from a tool's own payload.

Two ways in: ``POST /hooks/NAME`` (a signed webhook: its template, to its recipients;
``hooks``), and ``POST <base>/<recipient>?template=NAME`` (or any ``/msg`` request
authenticated by a token that has a ``template``: that one, always). The payload is the
tool's JSON, or a form whose one field ``payload`` holds it; the template's text
becomes one message per recipient, sent with no type of its own (``groupchat`` to a
room, ``chat`` to anyone else). A ``subject`` query parameter wins over the template's.

On success the tool gets the answer its template names (``reply:`` ``json``: the
gateway's own 201; ``slack``: 200 ``ok``; ``discord``: 204). A template that calls
``skip()`` sends nothing: 200 ``{"skipped": true}`` (or the tool's own answer).
"""

from __future__ import annotations

from aiohttp import web

from xmpp_post import jids
from xmpp_post.errors import BadRequest, Unprocessable
from xmpp_post.http.context import CONFIG, LIVE, note
from xmpp_post.http.delivery import deliver_and_answer
from xmpp_post.model import OutgoingMessage, Rejected, Sender
from xmpp_post.templates import SUCCESS_REPLIES, Rendered, parse_payload


async def render(request: web.Request, template: str) -> Rendered:
    """Render the request's payload with ``template`` (its errors are 4xx)."""
    note("template", template)
    templates = request.app[LIVE].templates
    templates.info(template)  # 404 unknown_template before the body is parsed
    body = await request.read()  # already read, within the limits, by guards.limits
    payload = parse_payload(request.headers.get("Content-Type"), body)
    query = {name: request.query[name] for name in request.query}
    return await templates.render(template, payload, request.headers, query)


async def answer_rendered(request: web.Request, sender: Sender, template: str,
                          targets: list[str], rendered: Rendered) -> web.Response:
    """Send what was rendered to every target, and answer as the template says."""
    success = SUCCESS_REPLIES[request.app[LIVE].templates.reply(template)]
    if rendered.skipped or rendered.body is None:
        if success is not None:
            return _tool_reply(success.status, success.content_type, success.body)
        return web.json_response({"skipped": True, "template": template}, status=200)
    config = request.app[CONFIG]
    nick = config.muc_nick or jids.local_of(sender.jid)
    subject = request.query.get("subject") or rendered.subject
    items: tuple[OutgoingMessage | Rejected, ...] = tuple(
        OutgoingMessage(to=target, body=rendered.body, type="chat", explicit_type=False,
                        subject=subject, nick=nick) for target in targets)
    response = await deliver_and_answer(request, sender, items, several=len(targets) > 1)
    if success is not None and response.status == 201:
        return _tool_reply(success.status, success.content_type, success.body)
    return response


def _tool_reply(status: int, content_type: str | None, body: bytes) -> web.Response:
    response = web.Response(status=status, body=body if status != 204 else None)
    if content_type is not None:
        response.headers["Content-Type"] = content_type
    return response


def _targets(request: web.Request, sender: Sender) -> list[str]:
    path = request.match_info.get("recipient")
    texts = path.split(",") if path else []
    texts += request.query.getall("to", [])
    if not texts:
        raise Unprocessable("no recipient: post to <base path>/<recipient>",
                            code="missing_recipient")
    limit = request.app[CONFIG].max_recipients
    if len(texts) > limit:
        raise BadRequest(f"{len(texts)} recipients; at most {limit} are allowed in one "
                         "request", code="too_many_recipients")
    targets: list[str] = []
    for text in texts:
        try:
            targets.append(jids.recipient(text, sender.domain))
        except jids.JidError as exc:
            raise BadRequest(f"invalid recipient {text!r}: {exc}", code="invalid_jid") \
                from None
    return list(dict.fromkeys(targets))


async def post_templated(request: web.Request, sender: Sender, template: str) -> web.Response:
    """``/msg`` with a template: the recipients come from the path (or ``?to=``)."""
    targets = _targets(request, sender)
    sender.scope.check_recipients(targets)  # before rendering: nothing to do for them
    rendered = await render(request, template)
    return await answer_rendered(request, sender, template, targets, rendered)
