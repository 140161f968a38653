"""The seam between the web side and the XMPP side: ``deliver(sender, message)``.

The web application only knows the ``Relay`` protocol, so its tests can fake the XMPP
side; ``XmppRelay`` is the real one, backed by a ``SessionPool``. ``deliver_each`` sends
one request's messages to several recipients concurrently and collects an outcome each.


``XmppRelay.deliver`` is bounded by ``request_timeout`` as a whole, however long it
queues behind another request's session opening: time running out before the message
was written is 503 ``request_timeout`` (nothing was sent; retry), after it 504 (the
server may or may not have it; retry with the same ``Idempotency-Key``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from xmpp_post.errors import AckTimeout, GatewayError, XmppUnavailable
from xmpp_post.pool import SessionPool
from xmpp_post.request import Credentials, OutgoingMessage, Rejected


@dataclass(frozen=True)
class Receipt:
    """Proof that the XMPP server acknowledged a message."""

    id: str
    sender: str
    to: str
    type: str
    nick: str | None = None  # the sender's nick in the room, for a group chat message
    receipt: str | None = None  # "received" or "timeout" when a receipt was requested

    def as_json(self) -> dict[str, str]:
        out = {"id": self.id, "from": self.sender, "to": self.to, "type": self.type}
        if self.nick is not None:
            out["nick"] = self.nick
        if self.receipt is not None:
            out["receipt"] = self.receipt
        return out


class Relay(Protocol):
    async def deliver(self, sender: Credentials, message: OutgoingMessage) -> Receipt: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class XmppRelay:
    """Deliver through one pooled XMPP session per sender."""

    def __init__(self, pool: SessionPool, *, request_timeout: float = 15.0,
                 retry_after: int = 5) -> None:
        self.pool = pool
        self._timeout = request_timeout
        self._retry_after = retry_after

    async def deliver(self, sender: Credentials, message: OutgoingMessage) -> Receipt:
        sending = False
        try:
            async with asyncio.timeout(self._timeout):
                session = await self.pool.session_for(sender)
                sending = True
                sent = await session.deliver(message)
        except TimeoutError:
            if sending:
                raise AckTimeout(f"no acknowledgement within the request timeout of "
                                 f"{self._timeout:g} s", code="request_timeout",
                                 retry_after=self._retry_after) from None
            raise XmppUnavailable(f"no XMPP session within the request timeout of "
                                  f"{self._timeout:g} s", code="request_timeout",
                                  retry_after=self._retry_after) from None
        return Receipt(id=sent.id, sender=sender.jid, to=message.to, type=sent.type,
                       nick=sent.nick, receipt=sent.receipt)

    async def start(self) -> None:
        self.pool.start()

    async def stop(self) -> None:
        await self.pool.stop()


Outcome = Receipt | Rejected


async def deliver_each(relay: Relay, sender: Credentials,
                       items: tuple[OutgoingMessage | Rejected, ...]) -> list[Outcome]:
    """Deliver every message concurrently; a failure is that recipient's ``Rejected``."""

    async def one(item: OutgoingMessage | Rejected) -> Outcome:
        if isinstance(item, Rejected):
            return item
        try:
            return await relay.deliver(sender, item)
        except GatewayError as error:
            return Rejected(item.to, error)

    if len(items) == 1:  # the common case: no task per recipient
        return [await one(items[0])]
    return list(await asyncio.gather(*(one(item) for item in items)))
