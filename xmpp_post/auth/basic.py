"""HTTP Basic with the sending account's own JID and password.

The user name is a bare JID (``alice@example.org``), or a localpart for the first
served domain. Only users of a served domain may send: any other domain is refused 403
before any connection is made, so the gateway is never a proxy for guessing passwords
on other servers. The password itself is checked by the XMPP server.
"""

from __future__ import annotations

from collections.abc import Callable

from xmpp_post import jids
from xmpp_post.auth import Presented
from xmpp_post.errors import Forbidden, Unauthorized
from xmpp_post.model import Sender

REALM = 'Basic realm="xmpp-post", charset="UTF-8"'


class BasicScheme:
    """HTTP Basic as the sending account; see the module docstring."""

    challenge = REALM

    def __init__(self, domains: tuple[str, ...],
                 encrypt_for: Callable[[str], str] | None = None) -> None:
        self._domains = domains
        self._encrypt_for = encrypt_for  # the default encryption of a sender's messages

    def authenticate(self, presented: Presented) -> Sender | None:
        pair = presented.basic
        if pair is None:
            return None
        if not pair[0] or not pair[1]:
            raise Unauthorized("credentials must be user@domain:password")
        return self.account(*pair)

    def account(self, user: str, password: str) -> Sender:
        try:
            jid = jids.account(user, self._domains[0])
        except jids.JidError:
            raise Unauthorized("the user name is not a valid XMPP address") from None
        domain = jids.domain_of(jid)
        if domain not in self._domains:
            raise Forbidden(f"this gateway does not serve the domain {domain!r}",
                            code="domain_not_served")
        return Sender(jid, password, encrypt=self._encrypt_for(jid)
                      if self._encrypt_for is not None else "none")
