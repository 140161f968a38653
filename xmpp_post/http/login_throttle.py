"""The login throttle guard: failed logins counted, further guesses refused with 429
before they reach the XMPP server (see ``guards``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from xmpp_post import logs
from xmpp_post.errors import CredentialsRefused, LoginRefused
from xmpp_post.http.authentication import current_sender_or_refusal
from xmpp_post.http.clients import client_address, client_network
from xmpp_post.http.context import RELAY, VERIFIED, sends
from xmpp_post.http.request_limits import Handler
from xmpp_post.model import Sender
from xmpp_post.state import LoginOutcome, LoginThrottle, StateKey

log = logging.getLogger(__name__)


def throttle_middleware(throttle: LoginThrottle, key: StateKey,
                        verified: Callable[[Sender], bool]) -> Middleware:
    """``verified``: whether an open session already proved a sender's password."""

    @web.middleware
    async def login_throttle(request: web.Request, handler: Handler) -> web.StreamResponse:
        found = current_sender_or_refusal() if sends(request) else None
        address = client_network(request)  # counted by IPv6 /64
        if isinstance(found, CredentialsRefused):
            proof = key.digest("refused", found.subject)
            await throttle.begin(found.subject, address, proof)  # 429 once locked
            log.warning("refused credentials (%s) from %s", logs.escape(found.subject),
                        logs.escape(client_address(request)))
            await throttle.end(found.subject, address, proof, "failed")
            return await handler(request)
        sender = found if isinstance(found, Sender) else None
        if sender is None or sender.configured or verified(sender):
            return await handler(request)
        proof = key.digest("login", sender.jid, sender.password)
        await throttle.begin(sender.jid, address, proof)
        outcome: LoginOutcome = "unknown"
        try:
            await request.app[RELAY].login(sender)  # before any work is spent on the request
            outcome = "succeeded"  # the one outcome that vouches for the password
            request[VERIFIED] = True
            return await handler(request)
        except LoginRefused:
            log.warning("failed login for %s from %s", sender.jid,
                        logs.escape(client_address(request)))
            outcome = "failed"
            raise
        finally:
            await throttle.end(sender.jid, address, proof, outcome)

    return login_throttle


