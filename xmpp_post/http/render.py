"""The HTTP edge of the error tree: one table from an error's kind (and XMPP condition)
to its status, the headers an error's values become (``Retry-After``, ``Connection``,
``Allow``), and the one renderer that turns any error into the JSON shape
``{"error": code, "message": text}``.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from xmpp_post.errors import (
    AccountLoginFailed,
    AckTimeout,
    BadRequest,
    ClientError,
    ClientGone,
    CredentialsRefused,
    Forbidden,
    GatewayError,
    HeaderTooLarge,
    LoginRefused,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    RecipientBusy,
    RecipientRefused,
    Refused,
    RequestTimeout,
    RoomRefused,
    StateUnavailable,
    TooManyRequests,
    Unauthorized,
    UnknownWebhookUrl,
    Unprocessable,
    UnsupportedMediaType,
    UploadFailed,
    UploadQuota,
    UploadRefused,
    UploadUnavailable,
    XmppError,
    XmppUnavailable,
)

# The status of each kind; a kind not listed takes its nearest listed ancestor's. The
# status says whether a retry can help: 4xx (but 408/429) never as such, 503 and 504
# later (with Retry-After).
STATUS: dict[type[GatewayError], int] = {
    GatewayError: 500,
    ClientError: 400,
    BadRequest: 400,
    Unauthorized: 401,
    CredentialsRefused: 401,
    UnknownWebhookUrl: 404,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    RequestTimeout: 408,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    HeaderTooLarge: 431,
    ClientGone: 499,  # never sent (nobody is left to read it): for the log and metrics
    Unprocessable: 422,
    TooManyRequests: 429,
    RateLimited: 429,
    Overloaded: 503,
    StateUnavailable: 503,
    XmppError: 502,
    LoginRefused: 401,
    AccountLoginFailed: 502,  # the gateway's own password for an account: never the caller's 401
    Refused: 502,
    RoomRefused: 403,
    RecipientRefused: 403,
    RecipientBusy: 503,
    XmppUnavailable: 503,
    AckTimeout: 504,
    UploadRefused: 502,
    UploadQuota: 429,  # the server said when: the sender's own quota
    UploadUnavailable: 501,  # the server has no upload service: a retry will not help
    UploadFailed: 502,
}

# Refusals whose XMPP condition says more than their kind: (kind, condition) -> status.
CONDITION_STATUS: dict[tuple[type[Refused], str], int] = {
    (RoomRefused, "item-not-found"): 404,
    (RoomRefused, "not-allowed"): 404,
    (RoomRefused, "jid-malformed"): 400,
    # No such account, or one that refuses the sender; servers do not say which.
    (RecipientRefused, "service-unavailable"): 404,
    (RecipientRefused, "item-not-found"): 404,
    (RecipientRefused, "remote-server-not-found"): 404,
    (RecipientRefused, "jid-malformed"): 400,
    (RecipientRefused, "gone"): 410,
    (RecipientBusy, "remote-server-timeout"): 504,
    (UploadRefused, "forbidden"): 403,
    (UploadRefused, "not-allowed"): 403,
    (UploadRefused, "not-acceptable"): 415,  # Prosody: a file type it does not take
    (UploadRefused, "bad-request"): 400,
    (UploadRefused, "resource-constraint"): 503,  # a quota, without a time to retry
}


class HttpStatusError(GatewayError):
    """A refusal aiohttp made with a status of its own (one not in the tree)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, code="http_error")
        self.http_status = status


def status_of(error: GatewayError) -> int:
    """The HTTP status that answers ``error``."""
    if isinstance(error, HttpStatusError):
        return error.http_status
    condition = error.condition if isinstance(error, Refused) else None
    for kind in type(error).__mro__:  # the most specific kind decides, by condition first
        status = CONDITION_STATUS.get((kind, condition)) if condition else None  # type: ignore[arg-type]
        if status is None:
            status = STATUS.get(kind)
        if status is not None:
            return status
    return 500


def headers_of(error: GatewayError) -> dict[str, str]:
    """The HTTP headers that carry what ``error`` knows besides its code and message."""
    headers: dict[str, str] = {}
    if isinstance(error, MethodNotAllowed) and error.allowed:
        headers["Allow"] = ", ".join(error.allowed)
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.close_connection:
        headers["Connection"] = "close"
    return headers


def render_error(error: GatewayError, challenge: str | None = None,
                 shape: Callable[[GatewayError, int], dict[str, object]] | None = None,
                 ) -> web.Response:
    """The one place an error becomes an HTTP response. ``challenge`` is the
    ``WWW-Authenticate`` value for a 401 (the authentication schemes say which);
    ``shape`` builds the body of a route whose errors carry more (from the error and
    its status), instead of ``error.body()``."""
    headers = headers_of(error)
    status = status_of(error)
    if status == 401 and challenge and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = challenge
    body = shape(error, status) if shape is not None else error.body()
    return web.json_response(body, status=status, headers=headers)
