"""Every failure the gateway reports, each knowing its HTTP status and code word.

The tree::

    GatewayError
    ├── ClientError                  4xx: the request is at fault
    │   ├── BadRequest               400  bad JSON or form, invalid JID, type or characters
    │   ├── Unauthorized             401  missing or wrong credentials
    │   ├── Forbidden                403  the sender's domain is not served here; a room
    │   │                                 refused the sender (members only, banned, password)
    │   ├── NotFound                 404  no such endpoint; no such room
    │   ├── MethodNotAllowed         405
    │   ├── RequestTimeout           408  the client sent its request too slowly
    │   ├── PayloadTooLarge          413
    │   ├── UnsupportedMediaType     415
    │   ├── Unprocessable            422  no recipient, no text
    │   └── TooManyRequests          429  too many failed logins (Retry-After)
    ├── Overloaded                   503  the gateway is at a limit of its own (Retry-After)
    └── UpstreamError                5xx: the XMPP side failed
        ├── XmppUnavailable          503  server unreachable, TLS refused, stream lost
        └── AckTimeout               504  the server (or a room) did not confirm in time

Library exceptions (slixmpp, aiohttp, json) are translated into this tree where the
library is called; ``web.render_error`` is the one place that turns them into responses.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway answers with."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message}


class ClientError(GatewayError):
    status = 400
    code = "bad_request"


class BadRequest(ClientError):
    status = 400
    code = "bad_request"


class Unauthorized(ClientError):
    status = 401
    code = "unauthorized"


class Forbidden(ClientError):
    status = 403
    code = "forbidden"


class NotFound(ClientError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ClientError):
    status = 405
    code = "method_not_allowed"


class RequestTimeout(ClientError):
    """The client did not send its whole request in time; the connection is closed."""

    status = 408
    code = "request_timeout"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Connection": "close"})


class PayloadTooLarge(ClientError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ClientError):
    status = 415
    code = "unsupported_media_type"


class Unprocessable(ClientError):
    status = 422
    code = "unprocessable"


class TooManyRequests(ClientError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})


class Overloaded(GatewayError):
    """The gateway itself is at one of its limits; worth retrying later."""

    status = 503
    code = "busy"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})


class UpstreamError(GatewayError):
    status = 502
    code = "upstream_error"


class XmppUnavailable(UpstreamError):
    """The XMPP server could not be reached or dropped the stream; worth retrying."""

    status = 503
    code = "xmpp_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})


class AckTimeout(UpstreamError):
    """The stanza was written but the server did not confirm it in time."""

    status = 504
    code = "ack_timeout"

    def __init__(self, message: str, *, retry_after: int = 5, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})


class ConfigError(Exception):
    """A setting is invalid; ``setting`` names it. Raised before anything starts."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem
