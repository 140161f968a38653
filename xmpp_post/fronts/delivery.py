"""Deliver a request's messages and answer with the outcome: shared by every endpoint
that sends (``/msg``, ``/hooks/NAME``, templated requests).

One recipient: 201 with the receipt, or the error. Several (or ``to`` as a list):
``{"results": [...]}``, one outcome per recipient (an error there has the error shape
plus ``to`` and ``status``): 201 when all succeeded, otherwise 207 Multi-Status. A
request is marked ``VERIFIED`` once an outcome shows that the XMPP server accepted the
sender's password (a receipt, or a refusal after the login): only then may its answer
be stored for retries.

With files (``files.FileToSend``, spooled by ``uploads``), each is uploaded once
(``relay.deliver_with_files``; a failure is the answer, and nothing is sent), counted
in ``/metrics`` by outcome, and the answer lists them: ``"files": [{"name", "size",
"content_type", "url"}]`` beside the receipt, or beside ``results``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from xmpp_post.files import FileToSend, UploadedFile
from xmpp_post.fronts import message_request as parse
from xmpp_post.http.context import CONFIG, METRICS, RELAY, VERIFIED
from xmpp_post.http.render import status_of
from xmpp_post.model import Outcome, OutgoingMessage, Receipt, Rejected, Sender
from xmpp_post.relay import deliver_each, deliver_with_files

OutcomesWatcher = Callable[[list[Outcome]], Awaitable[None]]


async def deliver_and_answer(request: web.Request, sender: Sender,
                             items: tuple[OutgoingMessage | Rejected, ...],
                             several: bool, files: tuple[FileToSend, ...] = (), *,
                             sent: OutcomesWatcher | None = None) -> web.Response:
    """Deliver ``items`` and answer; ``sent`` is told the outcomes before the answer is
    made (it must not raise)."""
    started = time.perf_counter()
    outcomes, uploaded = await deliver(request, sender, items, files)
    if sent is not None:
        await sent(outcomes)
    elapsed = time.perf_counter() - started
    for outcome in outcomes:
        if isinstance(outcome, Receipt):
            request.app[METRICS].delivery.observe(elapsed)
    mark_verified(request, outcomes)
    listed = {"files": [file.as_json() for file in uploaded]} if files else {}
    if not several:
        outcome = outcomes[0]
        if isinstance(outcome, Rejected):
            raise outcome.error
        return web.json_response({**outcome.as_json(), **listed}, status=201)
    results = []
    for outcome in outcomes:
        if isinstance(outcome, Rejected):
            results.append({"to": outcome.to, "status": status_of(outcome.error),
                            **outcome.error.body()})
        else:
            results.append({"status": 201, **outcome.as_json()})
    failed = any(isinstance(outcome, Rejected) for outcome in outcomes)
    return web.json_response({"results": results, **listed}, status=207 if failed else 201)


async def deliver(request: web.Request, sender: Sender,
                  items: tuple[OutgoingMessage | Rejected, ...],
                  files: tuple[FileToSend, ...] = (),
                  ) -> tuple[list[Outcome], tuple[UploadedFile, ...]]:
    """Send the messages (after uploading the files, if any); count the uploads."""
    relay = request.app[RELAY]
    if not files:
        return await deliver_each(relay, sender, items), ()
    metrics = request.app[METRICS]

    def observe(file: FileToSend, outcome: str) -> None:
        metrics.count_upload(outcome, file.size)

    return await deliver_with_files(relay, sender, items, files, observe)


def mark_verified(request: web.Request, outcomes: list[Receipt | Rejected]) -> None:
    """``VERIFIED`` when an outcome shows the XMPP server accepted the sender's password."""
    if any(isinstance(outcome, Receipt) or outcome.error.verified for outcome in outcomes):
        request[VERIFIED] = True


def path_recipients(request: web.Request) -> str | None:
    """The recipients named in the request's path (``<base>/<recipient>[,…]``), decoded
    strictly from the raw path; None for none (``<base>`` and ``<base>/``)."""
    if "recipient" not in request.match_info:
        return None
    return parse.path_recipients(request.raw_path, request.app[CONFIG].base_path)
