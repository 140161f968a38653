"""Signed webhooks: ``POST /hooks/NAME`` proven by the tool's shared secret.

The scheme claims every request under ``/hooks/``; an unknown name is 404. The
signature is checked over the raw body exactly as received (a form-encoded delivery
too), against every secret of the webhook (two while one is being rotated), with
``hmac.compare_digest``. How each ``verify`` scheme proves a delivery:

==================  ====================================================================
``github``          ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``
``gitea``           ``X-Gitea-Signature`` or ``X-Forgejo-Signature``: bare hex, the same
``gitlab``          ``X-Gitlab-Token``: the secret itself
``grafana``         ``X-Grafana-Alerting-Signature``: hex HMAC-SHA256 of the body or, when
                    the timestamp header (``timestamp_header``) is sent, of
                    ``<timestamp>:<body>``; a timestamp more than ``max_age`` seconds
                    away from now is refused
``standard-webhooks`` ``webhook-signature: v1,<base64 HMAC-SHA256(key, id.timestamp.body)>``
                    (several, space-separated, any may match) with ``webhook-id`` and
                    ``webhook-timestamp`` (refused beyond ``max_age``); the key is the
                    base64 after ``whsec_``
==================  ====================================================================

A missing, wrong or stale signature is ``CredentialsRefused`` (401; nothing is sent),
counted by the login throttle under ``webhook:NAME``. Nothing secret is ever part of an
error: not the secret, not the expected or received signature.

No signature covers the query string, so a delivery with one is refused (400
``query_not_allowed``): recipients, message fields and nick come from the
configuration only, and a replay cannot change them.

Each scheme names the delivery (``Sender.delivery``); a redelivery with that id gets
the first answer and sends nothing (``http.guards``), and no other header
(``Idempotency-Key``, another tool's id header) takes part:

==================  ====================================================================
``github``          ``X-GitHub-Delivery``: not signed
``gitea``           ``X-Gitea-Delivery`` or ``X-Forgejo-Delivery``: not signed
``gitlab``          ``X-Gitlab-Event-UUID``: not signed (nor is anything else: the token
                    is the secret itself)
``grafana``         with its timestamp, a digest of the signed ``<timestamp>:<body>``;
                    without, none
``standard-webhooks`` ``webhook-id``, signed
==================  ====================================================================

An id no signature covers only spares the tool's own retries: a replay of a captured
delivery with a new id is a new delivery. Only ``standard-webhooks`` and ``grafana``
with its timestamp sign something that makes a replay within ``max_age`` a duplicate
(the configuration check keeps ``max_age`` within ``idempotency_window``); beyond
``max_age`` it is stale.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from multidict import CIMultiDict, CIMultiDictProxy

from xmpp_post.auth import Presented
from xmpp_post.config.live import LiveConfig
from xmpp_post.config.tokens_webhooks import Webhook
from xmpp_post.errors import BadRequest, CredentialsRefused, NotFound
from xmpp_post.model import Scope, Sender

PREFIX = "/hooks/"
MAX_SIGNATURE_HEADER = 2048
# Where each tool puts its id of one delivery; a redelivery (a retry) repeats it.
GITHUB_ID, GITEA_IDS, GITLAB_ID = ("X-GitHub-Delivery", ("X-Gitea-Delivery",
                                   "X-Forgejo-Delivery"), "X-Gitlab-Event-UUID")
DELIVERY_HEADERS = (GITHUB_ID, *GITEA_IDS, GITLAB_ID, "webhook-id")
MAX_DELIVERY_ID = 255


class _Refused(Exception):
    """Why a delivery's proof does not hold: (code word, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_CASE_INSENSITIVE = (CIMultiDict, CIMultiDictProxy)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's first value, by case-insensitive name."""
    value = headers.get(name)
    if value is not None or isinstance(headers, _CASE_INSENSITIVE):
        return value  # a request's headers already match names case-insensitively
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _required(headers: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = header(headers, name)
        if value is not None and value.strip():
            if len(value) > MAX_SIGNATURE_HEADER:
                raise _Refused("invalid_signature", f"the {name} header is too long")
            return value.strip()
    shown = " or ".join(names)
    raise _Refused("missing_signature", f"the delivery has no {shown} header")


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"),
                               given.encode("utf-8", "backslashreplace"))


def _hex_hmac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _mismatch() -> _Refused:
    return _Refused("invalid_signature", "the delivery's signature does not match the "
                    "webhook's secret")


def _fresh(hook: Webhook, stamp: str, now: float) -> None:
    try:
        when = int(stamp)
    except ValueError:
        raise _Refused("invalid_signature", "the delivery's timestamp is not a number of "
                       "seconds") from None
    if abs(now - when) > hook.max_age:
        raise _Refused("stale_signature", f"the delivery's timestamp is more than "
                       f"{hook.max_age} s away from the gateway's clock (a replay?)")


def _github(hook: Webhook, presented: Presented, _now: float) -> str | None:
    given = _required(presented.headers, "X-Hub-Signature-256").lower()
    if not any(_same("sha256=" + _hex_hmac(key, presented.body), given)
               for key in hook.secrets):
        raise _mismatch()
    return delivery_id(presented.headers, (GITHUB_ID,))


def _gitea(hook: Webhook, presented: Presented, _now: float) -> str | None:
    given = _required(presented.headers, "X-Gitea-Signature", "X-Forgejo-Signature").lower()
    if not any(_same(_hex_hmac(key, presented.body), given) for key in hook.secrets):
        raise _mismatch()
    return delivery_id(presented.headers, GITEA_IDS)


def _gitlab(hook: Webhook, presented: Presented, _now: float) -> str | None:
    given = _required(presented.headers, "X-Gitlab-Token")
    if not any(hmac.compare_digest(key, given.encode("utf-8", "backslashreplace"))
               for key in hook.secrets):
        raise _Refused("invalid_signature", "the delivery's X-Gitlab-Token is not the "
                       "webhook's secret")
    return delivery_id(presented.headers, (GITLAB_ID,))


def _grafana(hook: Webhook, presented: Presented, now: float) -> str | None:
    given = _required(presented.headers, "X-Grafana-Alerting-Signature").lower()
    stamp = header(presented.headers, hook.timestamp_header)
    signed = presented.body
    if stamp is not None:
        stamp = stamp.strip()
        signed = stamp.encode("ascii", "backslashreplace") + b":" + presented.body
    if not any(_same(_hex_hmac(key, signed), given) for key in hook.secrets):
        raise _mismatch()
    if stamp is None:
        return None  # nothing but the body is signed, and Grafana sends no id
    _fresh(hook, stamp, now)
    return "signed:" + hashlib.sha256(signed).hexdigest()  # this time and this body


def _standard(hook: Webhook, presented: Presented, now: float) -> str:
    headers = presented.headers
    given = _required(headers, "webhook-signature")
    # The id as signed: two headers that sign alike (a byte that is not UTF-8, and its
    # backslashed spelling) are one delivery.
    msg_id = _required(headers, "webhook-id").encode("utf-8", "backslashreplace").decode()
    stamp = _required(headers, "webhook-timestamp")
    signed = f"{msg_id}.{stamp}.".encode("utf-8", "backslashreplace") + presented.body
    offered = [part.partition(",")[2] for part in given.split()
               if part.partition(",")[0] == "v1"]
    expected = [base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
                for key in hook.secrets]
    if not any(_same(mine, theirs) for mine in expected for theirs in offered):
        raise _mismatch()
    _fresh(hook, stamp, now)
    return msg_id  # signed: only this id makes a duplicate


# The headers a template sees on /hooks/NAME, by scheme: those the tool sends with every
# delivery (the event's name, the delivery's id). None is signed but standard-webhooks'
# id and timestamp; any other header would be a way to change a replayed delivery.
TEMPLATE_HEADERS: dict[str, tuple[str, ...]] = {
    "github": ("X-GitHub-Event", GITHUB_ID),
    "gitea": ("X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event", *GITEA_IDS),
    "gitlab": ("X-Gitlab-Event", GITLAB_ID),
    "grafana": (),  # and the webhook's timestamp_header
    "standard-webhooks": ("webhook-id", "webhook-timestamp"),
}


def delivery_headers(hook: Webhook, headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of ``hook``'s delivery that its template sees (``TEMPLATE_HEADERS``)."""
    names = TEMPLATE_HEADERS[hook.verify] + (
        (hook.timestamp_header,) if hook.verify == "grafana" else ())
    return {name: value for name in names if (value := header(headers, name)) is not None}


# Checks a delivery's proof (raising ``_Refused``); returns the scheme's id of it, if any.
Verifier = Callable[[Webhook, Presented, float], str | None]
VERIFIERS: dict[str, Verifier] = {
    "github": _github,
    "gitea": _gitea,
    "gitlab": _gitlab,
    "grafana": _grafana,
    "standard-webhooks": _standard,
}


def delivery_id(headers: Mapping[str, str],
                names: tuple[str, ...] = DELIVERY_HEADERS) -> str | None:
    """The tool's id of this delivery (1 to 255 printable ASCII characters) in the first
    of the headers ``names`` that has one, or None. Scoped by webhook name where it is
    used: GitLab's names the event, and every hook fired for one event shares it."""
    for name in names:
        value = (header(headers, name) or "").strip()
        if value and len(value) <= MAX_DELIVERY_ID and value.isascii() and value.isprintable():
            return value
    return None


def hook_name(path: str) -> str | None:
    """NAME of ``/hooks/NAME``; None for any other path."""
    return path[len(PREFIX):] if path.startswith(PREFIX) else None


class WebhookScheme:
    """Claims ``/hooks/NAME``; see the module docstring."""

    challenge = ""  # a tool that signs its deliveries has nothing to learn from one

    def __init__(self, live: LiveConfig, clock: Callable[[], float] = time.time) -> None:
        self._live = live
        self._clock = clock

    def authenticate(self, presented: Presented) -> Sender | None:
        name = hook_name(presented.path)
        if name is None:
            return None
        hook = self._live.webhooks.get(name)
        if hook is None or hook.verify not in VERIFIERS:  # a webhook URL has no name here
            raise NotFound("no webhook of that name is configured", code="webhook_not_found")
        if presented.query or presented.query_string:
            raise BadRequest("a webhook takes no query string: no signature covers it; "
                             "its recipients and message come from the configuration",
                             code="query_not_allowed")
        subject = f"webhook:{hook.name}"
        try:
            delivery = VERIFIERS[hook.verify](hook, presented, self._clock())
        except _Refused as refused:
            raise CredentialsRefused(refused.message, subject=subject,
                                     code=refused.code) from None
        return webhook_sender(self._live, hook, subject, delivery)


def webhook_sender(live: LiveConfig, hook: Webhook, subject: str,
                   delivery: str | None = None) -> Sender:
    """Who sends for ``hook`` (a signed webhook or a webhook URL): its account, limited
    to its recipients and template, encrypting as it and its account ask."""
    account = live.accounts.get(hook.account)
    if account is None:  # the configuration check makes this impossible
        raise CredentialsRefused("the webhook's account is not configured", subject=subject)
    return Sender(account.jid, account.password, via=subject,
                  scope=Scope(to=frozenset(hook.to), template=hook.template,
                              encrypt=hook.encrypt),
                  encrypt=live.encrypt_for(account.jid), delivery=delivery)
