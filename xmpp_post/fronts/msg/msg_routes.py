"""The message endpoint: ``POST <base>`` and ``POST <base>/<recipient>[,<recipient>…]``.

The handler parses the payload (``payload``), hands each message to the relay, and
answers 201 with the receipt; a request naming several recipients is answered with
``{"results": [...]}``, one outcome per recipient (``delivery``). A request with
``?template=NAME``, or authenticated by a token that has a template, carries a tool's
own payload for the template to render (``templated``).
``OPTIONS`` describes what is accepted, templates included.

The recipients in the path are taken from the raw path, percent-decoded as UTF-8 (a
path that is not is 400 ``invalid_encoding``, as a query string or form already is);
``POST <base>/`` is ``POST <base>``.

A ``multipart/form-data`` body carries files: the limits guard has read it already,
its files spooled (``uploads``); its other parts are the fields a form has. The files
are uploaded once and their URLs sent to every recipient after the text
(``delivery``); the answer lists them under ``files``.
"""

from __future__ import annotations

from aiohttp import web

from xmpp_post.config import Config
from xmpp_post.errors import UnsupportedMediaType
from xmpp_post.fronts import message_request as parse
from xmpp_post.fronts.delivery import deliver_and_answer, path_recipients
from xmpp_post.fronts.msg import msg_openapi
from xmpp_post.fronts.templated import post_templated
from xmpp_post.http.authentication import sender_of
from xmpp_post.http.context import CONFIG, LIVE, SENDING, UPLOAD_ROUTES, Front, note
from xmpp_post.http.uploads import spooled_form
from xmpp_post.model import MESSAGE_TYPES
from xmpp_post.templates import TEMPLATE_PARAMETER

ALLOW = "POST, OPTIONS"


def add_routes(app: web.Application, config: Config) -> None:
    base = config.base_path.rstrip("/")
    for path in (base or "/", base + r"/{recipient:[\s\S]*}"):
        route = app.router.add_post(path, post_message)
        app[SENDING].add(route)
        app[UPLOAD_ROUTES][route] = "form"  # as multipart/form-data
        app.router.add_route("OPTIONS", path, options)


def _media_type(request: web.Request) -> tuple[str, str | None]:
    if "Content-Type" not in request.headers:
        return "", None
    return request.content_type.lower(), request.charset


async def post_message(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    sender = sender_of(request)
    note("sender", sender.jid)
    template = sender.scope.template_for(request.query.get(TEMPLATE_PARAMETER))
    form = spooled_form(request)
    if template is not None:  # a token's own template, or ?template=
        if form is not None:
            raise UnsupportedMediaType("a template renders a tool's JSON or form payload, "
                                       "not multipart/form-data")
        return await post_templated(request, sender, template)
    if form is not None:
        asked = parse.form_data_messages(
            form.fields, path_recipients(request), sender, query=request.query_string,
            default_nick=config.muc_nick, max_recipients=config.max_recipients,
            with_files=bool(form.files))
        return await deliver_and_answer(request, sender, asked.items, asked.several,
                                        files=tuple(form.files))
    media_type, charset = _media_type(request)
    parse.check_media_type(media_type)
    body = await request.read()  # already read, within the limits, by guards.limits
    asked = parse.messages(media_type, charset, body, path_recipients(request), sender,
                           query=request.query_string, default_nick=config.muc_nick,
                           max_recipients=config.max_recipients)
    return await deliver_and_answer(request, sender, asked.items, asked.several)


async def options(request: web.Request) -> web.Response:
    return web.json_response(
        {"methods": ["POST"], "content_types": list(parse.MEDIA_TYPES),
         "fields": list(parse.FIELDS), "types": list(MESSAGE_TYPES),
         "templates": request.app[LIVE].templates.describe()},
        headers={"Allow": ALLOW, "Accept-Post": ", ".join(parse.MEDIA_TYPES)},
    )


FRONT = Front("msg", add_routes, msg_openapi.part)
