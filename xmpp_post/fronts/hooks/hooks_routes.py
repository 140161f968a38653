"""``POST /hooks/NAME``: a signed webhook's delivery, rendered and sent.

``auth.webhooks.WebhookScheme`` has already checked the delivery's signature over the
raw body (in ``guards.limits``) and names the configured account as the sender; the
webhook's ``template`` renders the payload, and the message goes to each of its ``to``
(``templated``). Nothing comes from the query string, which no signature covers: the
scheme refuses a delivery with one (400 ``query_not_allowed``), and the template's
``query`` is empty; its ``headers`` are only those the scheme's tool sends with every
delivery (``webhooks.delivery_headers``: the event's name, the delivery's id). A
redelivery with the scheme's id of the delivery (``Sender.delivery``) gets the first
answer and sends nothing (``guards.idempotency``).
"""

from __future__ import annotations

from aiohttp import web

from xmpp_post.auth.webhooks import delivery_headers
from xmpp_post.config import Config
from xmpp_post.errors import NotFound
from xmpp_post.fronts.hooks import hooks_openapi, webhook_url_routes
from xmpp_post.fronts.templated import post_templated
from xmpp_post.http.authentication import sender_of
from xmpp_post.http.context import LIVE, SENDING, Front, note

ROUTE = "/hooks/{name}"


def add_routes(app: web.Application, _config: Config) -> None:
    # The secret URLs before the names they would match.
    app[SENDING].add(app.router.add_post(webhook_url_routes.ROUTE,
                                         webhook_url_routes.post_webhook_url))
    app[SENDING].add(app.router.add_post(ROUTE, post_hook))


async def post_hook(request: web.Request) -> web.Response:
    hook = request.app[LIVE].webhooks.get(request.match_info["name"])
    if hook is None:
        raise NotFound("no webhook of that name is configured", code="webhook_not_found")
    sender = sender_of(request)
    note("sender", sender.jid)
    template = hook.template
    if template is None:  # the configuration check makes this impossible
        raise NotFound("the webhook has no template", code="unknown_template")
    return await post_templated(request, sender, template, recipients=hook.to,
                                query_string="",
                                headers=delivery_headers(hook, request.headers))


FRONT = Front("hooks", add_routes, hooks_openapi.part)
