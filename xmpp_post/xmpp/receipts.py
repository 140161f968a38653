"""XEP-0184 delivery receipts: wait for ``<received id=…/>`` from the recipient.

Only the gateway's own requests are tracked; the gateway never answers receipt requests
itself (it is not a client that displays messages). A receipt is matched by the
recipient's bare JID and the stanza id; ``wait()`` says ``received`` or ``timeout``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from xmpp_post import jids
from xmpp_post.xmpp.stanzas import RECEIPTS_NS
from xmpp_post.xmpp.waiters import Waiters

RECEIVED = "received"
TIMEOUT = "timeout"


class ReceiptTracker:
    """Receipts for one client stream."""

    def __init__(self, client: Any) -> None:
        self._waiters: Waiters[None] = Waiters()
        client.register_handler(Callback(
            "xmpp-post receipts",
            MatchXPath(f"{{{client.default_ns}}}message/{{{RECEIPTS_NS}}}received"),
            self._on_received))

    def expect(self, recipient: str, stanza_id: str) -> asyncio.Future[None]:
        return self._waiters.expect((jids.bare_of(recipient), stanza_id))

    async def wait(self, recipient: str, stanza_id: str, future: asyncio.Future[None],
                   timeout: float) -> str:
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return TIMEOUT
        finally:
            self._waiters.forget((jids.bare_of(recipient), stanza_id), future)
        return RECEIVED

    def cancel(self, recipient: str, stanza_id: str, future: asyncio.Future[None]) -> None:
        self._waiters.forget((jids.bare_of(recipient), stanza_id), future)

    def _on_received(self, message: Any) -> None:
        received = message.xml.find(f"{{{RECEIPTS_NS}}}received")
        stanza_id = received.get("id") if received is not None else None
        if stanza_id:
            self._waiters.resolve((str(message["from"].bare), stanza_id), None)
