"""ntfy's ``?auth=`` query parameter: the ``Authorization`` header in the URL.

Clients that can only set a URL (webhooks, shoutrrr's generic service, browsers' event
sources) put the whole header value, ``Basic …`` or ``Bearer …``, base64-encoded into
``auth`` (or ``authorization``); ``ntfy.decode_auth_param`` recovers it. The scheme then
hands the request, with that value as its one ``Authorization``, to the schemes that
read that header (tokens, then HTTP Basic), so whatever they accept in a header they
accept here too. As in ntfy, the parameter wins over an ``Authorization`` header.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from xmpp_post.auth import Presented, Scheme
from xmpp_post.errors import Unauthorized
from xmpp_post.fronts.ntfy.auth_param import auth_from_query
from xmpp_post.model import Sender


class QueryParamScheme:
    """The ``auth`` query parameter, checked by ``schemes``; see the module docstring."""

    challenge = ""  # a challenge cannot ask for a query parameter

    def __init__(self, schemes: Sequence[Scheme]) -> None:
        self._schemes = tuple(schemes)

    def authenticate(self, presented: Presented) -> Sender | None:
        value = auth_from_query(list(presented.query.items()))
        if value is None:
            return None
        inner = replace(presented, authorization=(value,))
        for scheme in self._schemes:
            sender = scheme.authenticate(inner)
            if sender is not None:
                return sender
        raise Unauthorized("the auth query parameter carries credentials of a kind this "
                           "gateway does not accept", code="invalid_auth_param")

