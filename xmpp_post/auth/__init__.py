"""Who is sending: ``Authenticator.authenticate(presented) -> Sender``.

A request's credentials are tried by a chain of schemes, each answering "not mine"
(``None``), "mine and valid" (a ``Sender``) or "mine and invalid" (it raises). The
schemes, in the order tried:

* ``webhook_urls.WebhookUrlScheme``: ``POST /hooks/xph_…``, the URL itself the secret;
* ``webhooks.WebhookScheme``: ``POST /hooks/NAME``, proven by the tool's signature;
* ``query_param.QueryParamScheme``: ntfy's ``?auth=``, an ``Authorization`` value in
  the URL, checked by the two schemes below;
* ``tokens.TokenScheme``: ``Authorization: Bearer xpt_…`` (or an ``xpt_`` token as the
  password of HTTP Basic), sending as a configured account within the token's scope;
* ``basic.BasicScheme``: HTTP Basic with the sending account's own password, which the
  XMPP server checks when the session opens.

When no scheme claims the request, it is refused 401 with the challenges of every
scheme.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from xmpp_post.errors import BadRequest, Unauthorized
from xmpp_post.model import Sender


@dataclass(frozen=True)
class Presented:
    """What one request presents for authentication, as plain values."""

    authorization: tuple[str, ...] = ()  # every Authorization header, in order
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    query_string: str = ""  # as received (``query`` is what parses of it)

    @cached_property
    def basic(self) -> tuple[str, str] | None:
        """(user, password) of an ``Authorization: Basic`` header (either may be empty),
        decoded once for every scheme that looks; None for another scheme; raises
        ``Unauthorized`` when it is not base64 of UTF-8 ``user:password``."""
        return basic_pair(self.authorization[0]) if self.authorization else None


def basic_pair(header: str) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic`` value; None for another scheme."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except ValueError:  # bad base64 (binascii.Error), non-ASCII text, or not UTF-8
        raise Unauthorized("the Basic credentials are not valid base64 of UTF-8 text") from None
    user, colon, password = decoded.partition(":")
    if not colon:
        raise Unauthorized("credentials must be user@domain:password")
    return user, password


class Scheme(Protocol):
    challenge: str  # for WWW-Authenticate

    def authenticate(self, presented: Presented) -> Sender | None:
        """None: not mine; a Sender: mine and valid; raise: mine and invalid."""
        ...


class Authenticator:
    """The chain of schemes, tried in order."""

    def __init__(self, schemes: Sequence[Scheme], *,
                 challenge_order: Sequence[Scheme] | None = None) -> None:
        """``challenge_order``: the schemes whose challenges ``WWW-Authenticate`` lists,
        in that order, when it differs from the order they are tried in."""
        self.schemes = tuple(schemes)
        shown = challenge_order if challenge_order is not None else self.schemes
        self.challenge = ", ".join(s.challenge for s in shown if s.challenge)

    def authenticate(self, presented: Presented) -> Sender:
        if len(presented.authorization) > 1:
            raise BadRequest("the request has more than one Authorization header",
                             code="duplicate_authorization")
        for scheme in self.schemes:
            sender = scheme.authenticate(presented)
            if sender is not None:
                return sender
        if not presented.authorization:
            raise Unauthorized("credentials are required: HTTP Basic (user@domain:password) "
                               "or a Bearer token")
        raise Unauthorized("only HTTP Basic and Bearer tokens are supported")
