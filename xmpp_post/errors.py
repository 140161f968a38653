"""Every failure the gateway reports: one tree of kinds, each with a code word.

The tree::

    GatewayError
    ├── ClientError                  the request is at fault
    │   ├── BadRequest               bad JSON or form, invalid JID, type or characters
    │   ├── Unauthorized             missing or malformed credentials
    │   │   └── CredentialsRefused   the gateway refused them (unknown token, bad
    │   │       │                    signature): a failed login, counted by the throttle
    │   │       └── UnknownWebhookUrl  no webhook URL has that secret: 404, yet counted
    │   ├── Forbidden                the sender may not do this (domain not served, ...)
    │   ├── NotFound                 no such endpoint; the target is not a room
    │   ├── MethodNotAllowed
    │   ├── RequestTimeout           the client sent its request too slowly
    │   ├── ClientGone               the client disconnected before it sent its request
    │   ├── PayloadTooLarge          the body, or the stanza it would make, is too large
    │   │   └── FileTooLarge         a file over max_file_size or the server's own limit
    │   ├── HeaderTooLarge           a request line or header field is too long
    │   ├── UnsupportedMediaType
    │   ├── Unprocessable            no recipient, no text
    │   │   └── OmemoUnavailable     encrypt=omemo, and it cannot be encrypted
    │   └── TooManyRequests          too many failed logins (Retry-After)
    │       └── RateLimited          a token over its rate
    ├── Overloaded                   the gateway is at a limit of its own (Retry-After)
    ├── StateUnavailable             the state (Redis, or the state directory's database)
    │                                cannot be used (Retry-After)
    └── XmppError                    the XMPP side refused or failed; keeps XMPP's condition
        ├── LoginRefused             the server refused the credentials (SASL failure)
        ├── AccountLoginFailed       ... the password the gateway holds for an account
        ├── Refused                  a stanza or presence error from the server
        │   ├── RoomRefused          ... from a group chat room
        │   ├── RecipientRefused     ... for a message: not delivered (no such user, ...)
        │   │   └── RecipientBusy    ... for now: worth retrying later (Retry-After)
        │   └── UploadRefused        ... for a file's upload slot (XEP-0363)
        │       └── UploadQuota      ... until the time the server named (Retry-After)
        ├── UploadUnavailable        the sender's server offers no file upload
        ├── UploadFailed             the HTTPS upload of a file failed or timed out
        ├── XmppUnavailable          server unreachable, TLS refused, stream lost
        └── AckTimeout               the server (or a room) did not confirm in time

Library exceptions (slixmpp, aiohttp, json) are translated into this tree where the
library is called. Errors know nothing of HTTP: they carry values (``retry_after``
seconds, ``close_connection``, the ``allowed`` methods), and ``http.render`` picks the
status from the kind and the XMPP condition, in one table, renders those values as
headers (``Retry-After``, ``Connection``, ``Allow``) and every error in one JSON shape.

An error raised once the XMPP server had accepted the sender's password is marked
``verified`` (by the relay): only such an error may become the stored answer to an
``Idempotency-Key``, so a stranger's guess can never decide the owner's answer.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway answers with."""

    code = "internal_error"
    # True once the XMPP server had accepted the sender's password when this happened.
    verified = False
    # Seconds after which a retry may succeed; None: a retry as it is will not help.
    retry_after: int | None = None
    # True when the client's connection cannot be used for another request.
    close_connection = False

    def __init__(self, message: str, *, code: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = retry_after

    def body(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message}


class ClientError(GatewayError):
    code = "bad_request"


class BadRequest(ClientError):
    code = "bad_request"


class Unauthorized(ClientError):
    code = "unauthorized"


class CredentialsRefused(Unauthorized):
    """Credentials the gateway checks itself (a token, a webhook's signature) are wrong.
    ``subject`` is what the throttle counts the failure under (``token``,
    ``webhook:NAME``): there is no account to name."""

    code = "invalid_credentials"

    def __init__(self, message: str, *, subject: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.subject = subject


class UnknownWebhookUrl(CredentialsRefused):
    """``POST /hooks/xph_…`` with a secret no webhook URL has: answered like any unknown
    path (404), and counted by the throttle like a wrong password, for it is a guess."""

    code = "webhook_not_found"


class Forbidden(ClientError):
    code = "forbidden"


class NotFound(ClientError):
    code = "not_found"


class MethodNotAllowed(ClientError):
    """The path exists, but not for this method; ``allowed`` names the methods it has."""

    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.allowed = allowed


class RequestTimeout(ClientError):
    """The client did not send its whole request in time; the connection is closed."""

    code = "client_too_slow"
    close_connection = True


class ClientGone(ClientError):
    """The client closed the connection before its request was complete: nobody is left
    to answer, and it is not the gateway's failure."""

    code = "client_disconnected"


class PayloadTooLarge(ClientError):
    code = "payload_too_large"


class FileTooLarge(PayloadTooLarge):
    """A file is larger than the gateway's ``max_file_size`` or the limit the sender's
    XMPP server advertises for uploads: refused before anything is uploaded or sent."""

    code = "file_too_large"


class HeaderTooLarge(ClientError):
    code = "header_too_large"


class UnsupportedMediaType(ClientError):
    code = "unsupported_media_type"


class Unprocessable(ClientError):
    code = "unprocessable"


class OmemoUnavailable(Unprocessable):
    """The message was to be encrypted (``encrypt=omemo``) and cannot be: the recipient
    has no usable OMEMO device, its keys are not readable, the room does not allow it or
    this gateway keeps no keys; nothing was sent in clear. The message says why."""

    code = "omemo_unavailable"


class TooManyRequests(ClientError):
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, retry_after=retry_after)


class RateLimited(TooManyRequests):
    """A token sent more than its ``rate`` allows; ``subject`` is ``token:NAME``."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, subject: str) -> None:
        super().__init__(message, retry_after=retry_after)
        self.subject = subject


class Overloaded(GatewayError):
    """The gateway itself is at one of its limits; worth retrying later."""

    code = "busy"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, retry_after=retry_after)


class StateUnavailable(GatewayError):
    """The state shared by the instances (Redis) did not answer, or the state directory's
    database cannot be written (the disk full, the file read-only), so a guarantee that
    depends on it (throttle, idempotency) cannot be kept; worth retrying."""

    code = "state_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, code: str | None = None) -> None:
        super().__init__(message, code=code, retry_after=retry_after)


class XmppError(GatewayError):
    """The XMPP side refused or failed. ``condition`` is XMPP's own name for what
    happened (``not-authorized``, ``item-not-found``, ...), empty when none was given."""

    code = "upstream_error"

    def __init__(self, message: str, *, code: str | None = None, condition: str = "",
                 text: str = "", retry_after: int | None = None) -> None:
        super().__init__(message, code=code, retry_after=retry_after)
        self.condition = condition
        self.text = text


class LoginRefused(XmppError):
    """The XMPP server refused the credentials: a failed login, counted by the throttle."""

    code = "invalid_credentials"


class AccountLoginFailed(XmppError):
    """The XMPP server refused the password the gateway holds for one of its
    ``[accounts]`` (changed on the server?): the operator's problem, not the caller's, so
    never a 401 and never counted as the caller's failed login."""

    code = "account_login_failed"


class Refused(XmppError):
    """The XMPP server answered a stanza with an error (``condition``, ``text``)."""

    code = "refused"


class RoomRefused(Refused):
    """A group chat room refused the join or the message."""

    code = "room_refused"


class RecipientRefused(Refused):
    """The XMPP server answered a message with an error for its recipient: the message
    was not delivered, and sending it again as it is will not change that."""

    code = "recipient_refused"


class RecipientBusy(RecipientRefused):
    """The recipient's server could not take the message now (an error of type ``wait``):
    it was not delivered, and a retry later may succeed."""

    code = "recipient_busy"

    def __init__(self, message: str, *, retry_after: int = 5, code: str | None = None,
                 condition: str = "", text: str = "") -> None:
        super().__init__(message, code=code, condition=condition, text=text,
                         retry_after=retry_after)


class UploadRefused(Refused):
    """The sender's server refused an upload slot for a file (``condition``, ``text``);
    nothing was uploaded or sent."""

    code = "upload_refused"


class UploadQuota(UploadRefused):
    """The upload service refused a slot for now (a quota) and said when to retry
    (XEP-0363's ``<retry stamp/>``): ``retry_after`` is the seconds until then."""

    code = "upload_quota"


class UploadUnavailable(XmppError):
    """The sender's XMPP server offers no file upload service (XEP-0363)."""

    code = "upload_unavailable"


class UploadFailed(XmppError):
    """The HTTPS upload of a file to the slot the server gave failed (a status, a
    refused certificate, a timeout); no message was sent."""

    code = "upload_failed"


class XmppUnavailable(XmppError):
    """The XMPP server could not be reached or dropped the stream; worth retrying."""

    code = "xmpp_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, code: str | None = None,
                 condition: str = "") -> None:
        super().__init__(message, code=code, condition=condition,
                         retry_after=retry_after)


class AckTimeout(XmppError):
    """The stanza was written but the server did not confirm it in time."""

    code = "ack_timeout"

    def __init__(self, message: str, *, retry_after: int = 5, code: str | None = None) -> None:
        super().__init__(message, code=code, retry_after=retry_after)


class ConfigError(Exception):
    """A setting is invalid; ``setting`` names it. Raised before anything starts."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem
