"""Deliver a request's messages and answer with the outcome: shared by every endpoint
that sends (``/msg``, ``/hooks/NAME``, templated requests).

One recipient: 201 with the receipt, or the error. Several (or ``to`` as a list):
``{"results": [...]}``, one outcome per recipient (an error there has the error shape
plus ``to`` and ``status``): 201 when all succeeded, otherwise 207 Multi-Status.
"""

from __future__ import annotations

import time

from aiohttp import web

from xmpp_post.http.context import METRICS, RELAY
from xmpp_post.http.errors import status_of
from xmpp_post.model import OutgoingMessage, Rejected, Sender
from xmpp_post.relay import deliver_each


async def deliver_and_answer(request: web.Request, sender: Sender,
                             items: tuple[OutgoingMessage | Rejected, ...],
                             several: bool) -> web.Response:
    started = time.perf_counter()
    outcomes = await deliver_each(request.app[RELAY], sender, items)
    elapsed = time.perf_counter() - started
    for outcome in outcomes:
        if not isinstance(outcome, Rejected):
            request.app[METRICS].delivery.observe(elapsed)
    if not several:
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
