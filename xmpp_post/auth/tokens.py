"""API tokens: ``Authorization: Bearer xpt_…``, or an ``xpt_`` token as the password of
HTTP Basic (any user name) for tools that can only do Basic.

A token is looked up by its SHA-256 among ``[tokens]`` (read through the live
configuration, so a reload revokes at once). Hashing first and then looking the digest
up in a dict is constant-time where it matters: the token is 128+ random bits, so a
digest says nothing an attacker could build on, and no comparison runs over the secret
itself. An unknown or revoked token is "mine and invalid": ``CredentialsRefused``, a
401 counted by the per-address login throttle under the subject ``token``.

A valid token sends as its account with that account's configured password, limited
to its ``Scope`` (recipients, template, rate). Its ``rate`` (N messages per second,
minute or hour) is kept here, in this process, and counts messages, one per recipient,
when they are about to be sent (``Scope.take``): a request whose messages would go
beyond it sends none and is 429 ``rate_limited`` with ``Retry-After``; one with more
messages than the rate allows at all is 422 ``exceeds_rate``. A request that sends
nothing (a template that skips, an error) costs nothing. Several gateway instances
behind one address each allow the full rate.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from functools import partial

from xmpp_post.auth import Presented
from xmpp_post.config.live import LiveConfig
from xmpp_post.config.tokens_webhooks import TOKEN_PREFIX, Rate, Token
from xmpp_post.errors import CredentialsRefused, RateLimited, Unauthorized, Unprocessable
from xmpp_post.model import Scope, Sender

CHALLENGE = 'Bearer realm="xmpp-post"'
SUBJECT = "token"  # what the login throttle counts an unknown token under


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def presented_token(presented: Presented) -> str | None:
    """The token in the (single) Authorization header: a Bearer credential, or an
    ``xpt_`` password of HTTP Basic. None when the header is anything else."""
    if not presented.authorization:
        return None
    scheme, _, credentials = presented.authorization[0].strip().partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    try:
        pair = presented.basic
    except Unauthorized:
        return None  # the Basic scheme explains what is wrong
    return pair[1] if pair is not None and pair[1].startswith(TOKEN_PREFIX) else None


class RateLimits:
    """Each token's ``rate`` in this process: a generic cell rate algorithm over messages,
    so N per minute allows a burst of N messages and then one every 60/N seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._due: dict[tuple[str, Rate], float] = {}  # theoretical arrival time

    def take(self, name: str, rate: Rate, messages: int = 1) -> None:
        """Count ``messages`` of token ``name``, all or none: raise RateLimited (429) if
        they do not fit in what the rate allows now, Unprocessable (422) if they never
        would."""
        if messages > rate.count:
            raise Unprocessable(f"this request would send {messages} messages; this token "
                                f"may send {rate}", code="exceeds_rate")
        now = self._clock()
        interval = rate.seconds / rate.count
        due = max(self._due.get((name, rate), now), now)
        wait = due + messages * interval - now - rate.seconds
        if wait > 0:
            raise RateLimited(f"this token may send {rate} messages; {messages} more would "
                              "exceed it; try again later",
                              retry_after=max(1, math.ceil(wait)), subject=f"token:{name}")
        self._due[(name, rate)] = due + messages * interval

    def forget_except(self, names: set[str]) -> None:
        """Drop the state of tokens no longer configured (after a reload)."""
        for key in [key for key in self._due if key[0] not in names]:
            del self._due[key]


class TokenScheme:
    """``Bearer`` tokens, and ``xpt_`` tokens as Basic passwords; see the module docs."""

    challenge = CHALLENGE

    def __init__(self, live: LiveConfig, rates: RateLimits | None = None) -> None:
        self._live = live
        self.rates = rates if rates is not None else RateLimits()

    def authenticate(self, presented: Presented) -> Sender | None:
        token = presented_token(presented)
        if token is None:
            return None
        found = self._live.tokens.by_digest.get(token_digest(token)) if token else None
        if found is None:
            raise CredentialsRefused("the token is unknown or has been revoked",
                                     subject=SUBJECT)
        return self.sender(found)

    def sender(self, token: Token) -> Sender:
        account = self._live.accounts.get(token.account)
        if account is None:  # the configuration check makes this impossible
            raise CredentialsRefused("the token's account is not configured", subject=SUBJECT)
        allowance = (partial(self.rates.take, token.name, token.rate)
                     if token.rate is not None else None)
        return Sender(account.jid, account.password, via=f"token:{token.name}",
                      scope=Scope(to=token.to, template=token.template, allowance=allowance,
                                  encrypt=token.encrypt),
                      encrypt=self._live.encrypt_for(account.jid))
