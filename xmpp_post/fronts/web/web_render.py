"""Templates tried on a payload: ``GET /templates`` and ``POST /templates/NAME/render``.

``GET /templates`` lists the templates (name, description, built-in or not, the answer
a tool gets) with a sample of what its tool sends for each built-in (``templates/
samples/NAME.json``: the headers that say what happened, and the payload); it needs no
credentials, as ``/openapi.json`` lists the same names.

``POST /templates/NAME/render`` takes exactly what a tool would send with
``?template=NAME`` (the payload as the body, its headers, the query string with ``to``
and the message fields) and answers what sending it would make, sending nothing:
``{"template", "skipped", "subject", "body", "messages": [{"to", "type", "stanza"}]}``,
one message per recipient (a recipient refused by the checks has its error instead of
a stanza). It is authenticated like a send (the guards, the login throttle), a password
given with HTTP Basic is proven by a login to the XMPP server before anything is
rendered, and the render runs in the same sandbox, within the same limits
(``max_template_body``, the render's time and size, ``max_recipients``, the stanza
size): a failing template is 422 ``template_error`` with the template's line, as when
sending. Without ``to`` the stanza is addressed to the sender.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from typing import Any

from aiohttp import web

from xmpp_post.errors import GatewayError
from xmpp_post.fronts import message_request as parse
from xmpp_post.fronts.templated import Skipped, payload_of, render_messages
from xmpp_post.fronts.web.web_page import secured
from xmpp_post.http.authentication import sender_of
from xmpp_post.http.context import CONFIG, LIVE, PAYLOADS, RELAY, SENDING, VERIFIED, note
from xmpp_post.http.render import status_of
from xmpp_post.model import OutgoingMessage, Scope
from xmpp_post.templates import BUILTIN_DIR, TemplateSet

LIST = "/templates"
RENDER = "/templates/{name}/render"
SAMPLES = BUILTIN_DIR.parent / "samples"


@functools.cache
def samples() -> dict[str, dict[str, Any]]:
    """The shipped sample of each built-in template, by name: ``headers`` and
    ``payload``."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(SAMPLES.glob("*.json"))}


def listing(templates: TemplateSet) -> list[dict[str, Any]]:
    shipped = samples()
    out = []
    for name in templates.names():
        info = templates.info(name)
        sample = shipped.get(name) if info.builtin else None
        out.append({"name": name, "description": info.description, "builtin": info.builtin,
                    "reply": info.reply, "sample": sample})
    return out


async def list_templates(request: web.Request) -> web.Response:
    return secured(web.json_response({"templates": listing(request.app[LIVE].templates)}))


async def render_template(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    templates = request.app[LIVE].templates
    sender = sender_of(request)
    note("sender", sender.jid)
    name = sender.scope.template_for(request.match_info["name"]) or ""
    note("template", name)
    templates.info(name)  # 404 unknown_template before the payload is read
    query, to = parse.query_fields(request.query_string)
    body = await request.read()  # already read, within the limits, by guards.limits
    payload = await payload_of(request.headers.get("Content-Type"), body)
    # The password proven before any work is done for it (by the guard's login, else here)
    if not sender.configured and not request.get(VERIFIED):
        await request.app[RELAY].login(sender)
        request[VERIFIED] = True
    shown_sender = sender if to else replace(sender, scope=Scope(template=sender.scope.template))
    asked = await render_messages(
        templates, name, payload, request.headers, query, shown_sender,
        recipients=to or [sender.jid], default_nick=config.muc_nick,
        max_recipients=config.max_recipients)
    if isinstance(asked, Skipped):
        return secured(web.json_response({"template": name, "skipped": True,
                                          "subject": None, "body": None, "messages": []}))
    relay = request.app[RELAY]
    messages: list[dict[str, Any]] = []
    first: OutgoingMessage | None = None
    for item in asked.items:
        if not isinstance(item, OutgoingMessage):
            messages.append({"to": item.to, "status": status_of(item.error),
                             **item.error.body()})
            continue
        first = first or item
        try:
            messages.append({"to": item.to, "type": item.type,
                             "stanza": relay.preview(item)})
        except GatewayError as error:  # too large for the server, say
            messages.append({"to": item.to, "status": status_of(error), **error.body()})
    return secured(web.json_response({
        "template": name, "skipped": False,
        "subject": first.subject if first is not None else None,
        "body": first.body if first is not None else None,
        "messages": messages}))


def add_routes(app: web.Application) -> None:
    samples()  # read now, not in the event loop
    app.router.add_get(LIST, list_templates)
    route = app.router.add_post(RENDER, render_template)
    app[SENDING].add(route)  # authenticated, throttled and limited like a send
    app[PAYLOADS].add(route)
