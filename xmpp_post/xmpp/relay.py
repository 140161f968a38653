"""The real ``Relay``: one pooled XMPP session per sender.

``XmppRelay.deliver`` is bounded by ``request_timeout`` as a whole, however long it
queues behind another request's session opening: time running out before the message
was written is 503 ``request_timeout`` (nothing was sent; retry), after it 504 (the
server may or may not have it; retry with the same ``Idempotency-Key``).
"""

from __future__ import annotations

import asyncio

from xmpp_post.errors import AckTimeout, XmppUnavailable
from xmpp_post.model import OutgoingMessage, Receipt, Sender
from xmpp_post.xmpp.pool import SessionPool


class XmppRelay:
    """Deliver through one pooled XMPP session per sender."""

    def __init__(self, pool: SessionPool, *, request_timeout: float = 15.0,
                 retry_after: int = 5) -> None:
        self.pool = pool
        self._timeout = request_timeout
        self._retry_after = retry_after

    async def deliver(self, sender: Sender, message: OutgoingMessage) -> Receipt:
        sending = False
        try:
            async with asyncio.timeout(self._timeout):
                session = await self.pool.session_for(sender)
                sending = True
                return await session.deliver(message)
        except TimeoutError:
            if sending:
                raise AckTimeout(f"no acknowledgement within the request timeout of "
                                 f"{self._timeout:g} s", code="request_timeout",
                                 retry_after=self._retry_after) from None
            raise XmppUnavailable(f"no XMPP session within the request timeout of "
                                  f"{self._timeout:g} s", code="request_timeout",
                                  retry_after=self._retry_after) from None

    async def start(self) -> None:
        self.pool.start()

    async def stop(self) -> None:
        await self.pool.stop()
