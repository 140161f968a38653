"""The seam between the web side and the XMPP side: ``deliver(sender, message)``.

The web application only knows the ``Relay`` protocol, so its tests can fake the XMPP
side; ``XmppRelay`` is the real one, backed by a ``SessionPool``.

``XmppRelay.deliver`` is bounded by ``request_timeout`` as a whole, however long it
queues behind another request's session opening: time running out before the message
was written is 503 ``request_timeout`` (nothing was sent; retry), after it 504 (the
server may or may not have it; retry with the same ``Idempotency-Key``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from xmpp_post.errors import AckTimeout, XmppUnavailable
from xmpp_post.pool import SessionPool
from xmpp_post.request import Credentials, OutgoingMessage


@dataclass(frozen=True)
class Receipt:
    """Proof that the XMPP server acknowledged a message."""

    id: str
    sender: str
    to: str
    type: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "from": self.sender, "to": self.to, "type": self.type}


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
                stanza_id = await session.send(message)
        except TimeoutError:
            if sending:
                raise AckTimeout(f"no acknowledgement within the request timeout of "
                                 f"{self._timeout:g} s", code="request_timeout",
                                 retry_after=self._retry_after) from None
            raise XmppUnavailable(f"no XMPP session within the request timeout of "
                                  f"{self._timeout:g} s", code="request_timeout",
                                  retry_after=self._retry_after) from None
        return Receipt(id=stanza_id, sender=sender.jid, to=message.to, type=message.type)

    async def start(self) -> None:
        self.pool.start()

    async def stop(self) -> None:
        await self.pool.stop()
