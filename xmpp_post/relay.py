"""The seam between the web side and the XMPP side: ``deliver(sender, message)``.

The web application only knows the ``Relay`` protocol, so its tests can fake the XMPP
side; ``XmppRelay`` is the real one, backed by a ``SessionPool``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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

    def __init__(self, pool: SessionPool) -> None:
        self.pool = pool

    async def deliver(self, sender: Credentials, message: OutgoingMessage) -> Receipt:
        stanza_id = await self.pool.send(sender, message)
        return Receipt(id=stanza_id, sender=sender.jid, to=message.to, type=message.type)

    async def start(self) -> None:
        self.pool.start()

    async def stop(self) -> None:
        await self.pool.stop()
