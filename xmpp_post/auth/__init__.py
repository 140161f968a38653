"""Who is sending: ``Authenticator.authenticate(presented) -> Sender``.

A request's credentials are tried by a chain of schemes, each answering "not mine"
(``None``), "mine and valid" (a ``Sender``) or "mine and invalid" (it raises). The
schemes, in the order tried:

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
