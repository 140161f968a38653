"""The seam between the HTTP side and the XMPP side: ``deliver(sender, message)``.

``login(sender)`` asks only whether the XMPP server accepts the sender's password (it
opens, or reuses, the session a delivery then uses): the guards call it before any other
work is done for a sender the gateway cannot vouch for (``http.guards``).

Besides delivering, a relay proves a sender's password without sending (``login``: a
template rendered for the web page is authenticated like a send), shows the stanza a
message would be (``preview``) and lists its open sessions (``sessions``).

The HTTP side knows only the ``Relay`` protocol, so each side can be tested with the
other faked (``xmpp_post.testing.FakeRelay``); ``xmpp.xmpp_relay.XmppRelay`` is the real one.
``deliver_each`` sends one request's messages to several recipients concurrently and
collects an outcome each, once the sender's scope allows every recipient (a token
limited to some recipients sends nothing when any other is named: 403) and its rate
allows every message (else nothing is sent: 429).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from xmpp_post.errors import GatewayError, LoginRefused
from xmpp_post.model import Outcome, OutgoingMessage, Receipt, Rejected, Sender, SessionInfo


class Relay(Protocol):
    async def deliver(self, sender: Sender, message: OutgoingMessage) -> Receipt:
        """Send ``message`` as ``sender``; return once the XMPP server has it, or raise
        the ``GatewayError`` that says why not."""
        ...

    def verified(self, sender: Sender) -> bool:
        """Whether an open session already proved ``sender``'s password: a request of
        theirs is no login, so no password guess (the login throttle lets it through)."""
        ...

    async def login(self, sender: Sender) -> None:
        """Return once the XMPP server has accepted ``sender``'s password (an open session
        that proved it will do), sending nothing; raise ``LoginRefused`` if the server
        refused it, or the ``GatewayError`` that says why it could not be asked."""
        ...

    def preview(self, message: OutgoingMessage) -> str:
        """The ``<message/>`` that delivering ``message`` would write, as text (its type
        as given: the type a room's message takes is decided when it is sent)."""
        ...

    def sessions(self) -> list[SessionInfo]:
        """The XMPP sessions open now, most recently used last."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def deliver_each(relay: Relay, sender: Sender,
                       items: tuple[OutgoingMessage | Rejected, ...]) -> list[Outcome]:
    """Deliver every message concurrently; a failure is that recipient's ``Rejected``,
    except a refused login: that is the sender's failure, not a recipient's, and is
    raised (so the login throttle counts it, however many recipients were named).
    Raises ``Forbidden`` (nothing sent) when the sender's scope excludes a recipient, and
    ``RateLimited`` (nothing sent) when the messages would exceed its rate: a rate
    counts messages, one per recipient, not requests."""
    targets = [item.to for item in items if isinstance(item, OutgoingMessage)]
    sender.scope.check_recipients(targets)
    sender.scope.take(len(targets))

    async def one(item: OutgoingMessage | Rejected) -> Outcome:
        if isinstance(item, Rejected):
            return item
        try:
            return await relay.deliver(sender, item)
        except GatewayError as error:
            return Rejected(item.to, error)

    if len(items) == 1:  # the common case: no task per recipient
        outcomes = [await one(items[0])]
    else:
        outcomes = list(await asyncio.gather(*(one(item) for item in items)))
    for outcome in outcomes:
        if isinstance(outcome, Rejected) and isinstance(outcome.error, LoginRefused):
            raise outcome.error
    return outcomes
