"""The message endpoint: ``POST <base>`` and ``POST <base>/<recipient>[,<recipient>…]``.

The handler parses the payload (``payload``), hands each message to the relay, and
answers 201 with the receipt; a request naming several recipients is answered with
``{"results": [...]}``, one outcome per recipient (an error there has the error shape
plus ``to`` and ``status``): 201 when all succeeded, otherwise 207 Multi-Status.
``OPTIONS`` describes what is accepted.
"""

from __future__ import annotations

import time

from aiohttp import web

from xmpp_post.http import payload as parse
from xmpp_post.http.context import CONFIG, METRICS, RELAY, note
from xmpp_post.http.errors import status_of
from xmpp_post.http.guards import sender_of
from xmpp_post.model import MESSAGE_TYPES, Rejected
from xmpp_post.relay import deliver_each

ALLOW = "POST, OPTIONS"


def _media_type(request: web.Request) -> tuple[str, str | None]:
    if "Content-Type" not in request.headers:
        return "", None
    return request.content_type.lower(), request.charset


async def post_message(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    sender = sender_of(request)
    note("sender", sender.jid)
    media_type, charset = _media_type(request)
    parse.check_media_type(media_type)
    body = await request.read()  # already read, within the limits, by guards.limits
    asked = parse.messages(media_type, charset, body, request.match_info.get("recipient"),
                           sender, query=request.query_string, default_nick=config.muc_nick,
                           max_recipients=config.max_recipients)
    started = time.perf_counter()
    outcomes = await deliver_each(request.app[RELAY], sender, asked.items)
    elapsed = time.perf_counter() - started
    for outcome in outcomes:
        if not isinstance(outcome, Rejected):
            request.app[METRICS].delivery.observe(elapsed)
    if not asked.several:
        outcome = outcomes[0]
        if isinstance(outcome, Rejected):
            raise outcome.error
        return web.json_response(outcome.as_json(), status=201)
    results = []
    for outcome in outcomes:
        if isinstance(outcome, Rejected):
            results.append({"to": outcome.to, "status": status_of(outcome.error),
                            **outcome.error.body()})
        else:
            results.append({"status": 201, **outcome.as_json()})
    failed = any(isinstance(outcome, Rejected) for outcome in outcomes)
    return web.json_response({"results": results}, status=207 if failed else 201)


async def options(request: web.Request) -> web.Response:
    return web.json_response(
        {"methods": ["POST"], "content_types": list(parse.MEDIA_TYPES),
         "fields": list(parse.FIELDS), "types": list(MESSAGE_TYPES)},
        headers={"Allow": ALLOW, "Accept-Post": ", ".join(parse.MEDIA_TYPES)},
    )
