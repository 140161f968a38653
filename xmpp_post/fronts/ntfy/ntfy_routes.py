"""ntfy's publish API at the root of the listener (the mapping: ``xmpp_post.fronts.ntfy``).

Three resources: ``PUT|POST /`` with a JSON object, ``PUT|POST /<topic>``, and
``GET|POST /<topic>/publish`` (``/send``, ``/trigger``). A topic resource never matches
the gateway's own paths (``ntfy.reserved_names``: the base path's first segment,
``healthz``, ``readyz``, ``metrics``, …), so those answer exactly as without ntfy.

Every publishing route is marked as sending (``context.SENDING``), so the guards apply
as to ``POST <base>``: limits, the login throttle, ``Idempotency-Key``; a token's scope
holds too (its recipients, checked by ``deliver_each``; a token bound to a template is
refused, since nothing here renders one). ``OPTIONS``
says what a route accepts; any other method is 405 with ``Allow``. Errors on these
routes keep the gateway's shape plus ntfy's ``http`` and ``code`` members
(``context.ERROR_SHAPES``), with their headers (``Allow``, ``Retry-After``,
``WWW-Authenticate``).

A body that is a file by ntfy's rule (``ntfy.publish``) has been spooled by the limits
guard (``uploads``); it is uploaded once (XEP-0363) and its URL sent after the text (the
text only when the request gave one), and the answer's ``attachment`` describes it.

The answer is 200 with ntfy's message object (its ``id`` is also the stanza id) once
the XMPP server acknowledged the message to every recipient; ntfy clients take any other
status for failure. Otherwise: with one recipient, its error; with several (a
``[topics]`` entry), the error of the first recipient that failed, in the table's order,
plus ``results``, one outcome per recipient, as ``POST <base>`` gives them.

A Markdown message longer than ``MARKDOWN_ON_LOOP`` characters is converted in a worker
thread (``xmpp_post.cpu``): the conversion is linear, but a long one would still hold
the event loop.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.web_urldispatcher import DynamicResource, Resource, UrlMappingMatchInfo

from xmpp_post import cpu, jids
from xmpp_post.config import Config
from xmpp_post.errors import Forbidden, GatewayError, MethodNotAllowed
from xmpp_post.files import FileToSend
from xmpp_post.fronts import fields, ntfy
from xmpp_post.fronts.delivery import deliver, mark_verified
from xmpp_post.fronts.ntfy import ntfy_openapi
from xmpp_post.fronts.ntfy.params import PARAMS
from xmpp_post.http.authentication import sender_of
from xmpp_post.http.context import (
    AUTH,
    CONFIG,
    ERROR_SHAPES,
    LIVE,
    METRICS,
    SENDING,
    UPLOAD_ROUTES,
    Front,
    note,
)
from xmpp_post.http.render import render_error, status_of
from xmpp_post.http.uploads import spooled_body
from xmpp_post.model import OutgoingMessage, Receipt, Rejected

_TOPIC = "{topic:[-_A-Za-z0-9]{1,64}}"
JSON_PATH = "/"
TOPIC_PATH = "/" + _TOPIC
WEBHOOK_PATH = f"/{_TOPIC}/{{action:{'|'.join(ntfy.publish.WEBHOOK_NAMES)}}}"
# each path, and the methods that publish there
ROUTES: dict[str, tuple[str, ...]] = {JSON_PATH: ("PUT", "POST"), TOPIC_PATH: ("PUT", "POST"),
                                      WEBHOOK_PATH: ("GET", "POST")}
MARKDOWN_ON_LOOP = 1024  # characters of Markdown converted on the event loop, at most
RESERVED = web.AppKey("ntfy_reserved", frozenset)


class TopicResource(DynamicResource):
    """A path that starts with a topic: it never matches a ``reserved`` first segment."""

    def __init__(self, path: str, reserved: frozenset[str]) -> None:
        super().__init__(path)
        self._reserved = reserved

    async def resolve(self, request: web.Request,
                      ) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        first = request.rel_url.path_safe.lstrip("/").partition("/")[0]
        if first.lower() in self._reserved:
            return None, set()
        return await super().resolve(request)


def add_routes(app: web.Application, config: Config) -> None:
    """Serve ntfy's publish API on ``app`` (which already holds the gateway's routes)."""
    reserved = ntfy.reserved_names(config.base_path)
    app[RESERVED] = reserved
    for path, methods in ROUTES.items():
        resource: Resource
        if path == JSON_PATH:
            resource = app.router.add_resource(path)
        else:
            resource = TopicResource(path, reserved)
            app.router.register_resource(resource)
        for method in methods:
            route = resource.add_route(method, publish)
            app[SENDING].add(route)
            if path != JSON_PATH:
                app[UPLOAD_ROUTES][route] = "body"  # a body may be a file
        resource.add_route("OPTIONS", options)
        resource.add_route("*", not_allowed)
        app[ERROR_SHAPES][resource] = ntfy.error_body


async def publish(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    sender = sender_of(request)
    note("sender", sender.jid)
    forced = sender.scope.template_for(None)
    if forced is not None:  # such a token sends only what its template makes of a payload
        raise Forbidden(f"these credentials always render with the template {forced!r}, "
                        "which ntfy publishing does not use", code="template_not_allowed")
    spooled = spooled_body(request)  # a body that may be a file, read by guards.limits
    body = spooled.data if spooled is not None else await request.read()
    content_type = request.headers.get("Content-Type", "")
    pub = ntfy.parse_publish(request.method, request.path, request.headers,
                             list(request.query.items()), body, content_type,
                             reserved=request.app[RESERVED], max_text=config.ntfy_max_text)
    topics = request.app[LIVE].current.sections.get("topics") or {}  # a reload swaps them
    targets = ntfy.recipients_for(pub.topic, topics, sender.domain)
    parts = (await cpu.run(ntfy.compose, pub)
             if pub.markdown and len(pub.message) > MARKDOWN_ON_LOOP else ntfy.compose(pub))
    message_id = ntfy.new_id()
    nick = fields.nick(config.muc_nick or jids.local_of(sender.jid))
    text = parts.body if pub.text_to_send else ""  # "": the file goes alone
    items = tuple(OutgoingMessage(to=target, body=text, type="chat", explicit_type=False,
                                  subject=parts.subject, id=message_id, oob_url=parts.oob_url,
                                  nick=nick, subject_in_rooms=False,
                                  encrypt=sender.scope.encryption_for(pub.encrypt,
                                                                      sender.encrypt))
                  for target in targets)
    files: tuple[FileToSend, ...] = ()
    if pub.file and spooled is not None and pub.filename and pub.content_type:
        files = (await spooled.as_file(pub.filename, pub.content_type),)
    started = time.perf_counter()
    outcomes, uploaded = await deliver(request, sender, items, files)
    elapsed = time.perf_counter() - started
    mark_verified(request, outcomes)  # only then may its answer be kept for retries
    failed = [outcome for outcome in outcomes if isinstance(outcome, Rejected)]
    for _ in range(len(outcomes) - len(failed)):
        request.app[METRICS].delivery.observe(elapsed)
    if not failed:
        return web.json_response(ntfy.reply(pub, message_id, time.time(),
                                            uploaded[0] if uploaded else None))
    if len(outcomes) == 1:
        raise failed[0].error
    return _partial_failure(request, failed[0].error, outcomes)


def _partial_failure(request: web.Request, first: GatewayError,
                     outcomes: list[Receipt | Rejected]) -> web.Response:
    """The first failure's error, with one result per recipient."""
    results: list[dict[str, object]] = []
    for outcome in outcomes:
        if isinstance(outcome, Rejected):
            results.append({"to": outcome.to, "status": status_of(outcome.error),
                            **outcome.error.body()})
        else:
            results.append({"status": 200, **outcome.as_json()})

    def shape(error: GatewayError, status: int) -> dict[str, object]:
        return {**ntfy.error_body(error, status), "results": results}

    note("error", first.code)
    return render_error(first, request.app[AUTH].challenge, shape=shape)


def _allowed(request: web.Request) -> str:
    resource = request.match_info.route.resource
    methods = {route.method for route in resource or ()} - {"*"}
    return ", ".join(sorted(methods))


async def options(request: web.Request) -> web.Response:
    allowed = _allowed(request)
    return web.json_response({"methods": allowed.split(", "), "parameters": list(PARAMS)},
                             headers={"Allow": allowed})


async def not_allowed(request: web.Request) -> web.Response:
    allowed = _allowed(request)
    raise MethodNotAllowed(f"method {request.method} is not allowed here; use {allowed}",
                           allowed=tuple(allowed.split(", ")))


FRONT = Front("ntfy", add_routes, ntfy_openapi.part)
