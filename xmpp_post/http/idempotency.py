"""The idempotency guard: a retry with the same ``Idempotency-Key`` (or a tool's own
delivery id) gets the first answer (see ``guards``)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from xmpp_post.auth.webhooks import delivery_id
from xmpp_post.errors import BadRequest, GatewayError
from xmpp_post.http.authentication import current_sender
from xmpp_post.http.context import VERIFIED, error_shape, sends
from xmpp_post.http.render import headers_of, render_error, status_of
from xmpp_post.http.request_limits import Handler
from xmpp_post.http.uploads import SPOOLED
from xmpp_post.state import IdempotencyStore, StateKey, StoredAnswer, replayed, storable

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def one_header(request: web.Request, name: str) -> str | None:
    """The value of a header the gateway acts on; given twice, the request is refused
    (another party on the path might have acted on the other value)."""
    values = request.headers.getall(name, ())
    if len(values) > 1:
        raise BadRequest(f"the request has more than one {name} header",
                         code="duplicate_header")
    return values[0] if values else None


def validate_key(value: str) -> str:
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise BadRequest(f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable "
                         "ASCII characters", code="invalid_idempotency_key")
    return value


def idempotency_middleware(store: IdempotencyStore, key_of: StateKey) -> Middleware:

    @web.middleware
    async def idempotent(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not sends(request):
            return await handler(request)
        sender = current_sender()
        if sender is not None and sender.webhook:
            value = sender.delivery  # the scheme's own id: nothing else
        elif (value := one_header(request, IDEMPOTENCY_HEADER)) is not None:
            validate_key(value)
        elif (delivery := delivery_id(request.headers)) is not None:
            value = f"{delivery} {request.path_qs}"  # one GitLab event id, several hooks
        if sender is None or value is None:
            return await handler(request)
        spooled = request.get(SPOOLED)
        if spooled is not None:  # a body with files: the digest of its parts, and its
            # media type without the boundary a client picks anew for each try
            body, content_type = spooled.digest, request.content_type
        else:
            body = await request.read()
            content_type = request.headers.get("Content-Type", "")
        fingerprint = key_of.digest(request.method, request.path, request.query_string,
                                    content_type, body, sender.password)
        if sender.configured:  # the gateway checked the token or signature itself
            key = (sender.via, value)
        else:  # scoped to the password presented: another never meets these answers
            scope = key_of.digest("idempotency", sender.jid, sender.password).hex()
            key = (f"{sender.jid} {scope}", value)
        stored = await store.claim(key, fingerprint)
        if stored is not None:
            return web.Response(body=stored.body, status=stored.status,
                                content_type=stored.content_type,
                                headers={**stored.replayed_headers(),
                                         "Idempotent-Replayed": "true"})
        answer: StoredAnswer | None = None
        try:
            response = await handler(request)
            if ((sender.configured or request.get(VERIFIED))
                    and isinstance(response, web.Response)
                    and isinstance(response.body, bytes)):
                answer = StoredAnswer(response.status, response.body, response.content_type)
            return response
        except GatewayError as error:
            if (sender.configured or error.verified) and storable(status_of(error)):
                rendered = render_error(error, shape=error_shape(request))
                assert isinstance(rendered.body, bytes)
                answer = StoredAnswer(rendered.status, rendered.body, rendered.content_type,
                                      tuple(replayed(headers_of(error).items()).items()))
            raise
        finally:
            await store.finish(key, answer)

    return idempotent
