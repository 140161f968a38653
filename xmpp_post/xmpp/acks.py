"""Proof that the server has a stanza: acknowledgement tracking for one client stream.

* With stream management (XEP-0198) the server's ``<a h=…/>`` covers a stanza. One
  ``<r/>`` follows the stanzas sent in one turn of the event loop, whether or not
  earlier ones were answered (the server answers each in order).
* Otherwise an XMPP ping (XEP-0199) sent after the stanza has been answered: the server
  can only do that after processing everything before it on the stream. While one ping
  is outstanding new stanzas wait for the next, sent as soon as the answer arrives.

Stanzas are tracked by an internal key, so client-chosen stanza ids may repeat.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.plugins.xep_0198 import stanza as sm_stanza
from slixmpp.xmlstream import ET

from xmpp_post.errors import AckTimeout, GatewayError
from xmpp_post.tasks import TaskGroup

log = logging.getLogger(__name__)

PING_NS = "urn:xmpp:ping"


class AckTracker:
    """Send stanzas and wait for the server's proof; see the module docstring."""

    def __init__(self, client: Any, *, timeout: float, retry_after: int,
                 on_timeout: Callable[[], None]) -> None:
        self._client = client
        self._timeout = timeout
        self._retry_after = retry_after
        self._on_timeout = on_timeout
        self.uses_sm = False
        self.active = False  # requests go out only while the session is alive
        self._keys = itertools.count()
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._by_stanza: dict[int, int] = {}  # id() of a stanza awaiting its ack -> key
        self._unrequested: list[int] = []
        self._ping_out = False
        self._sm_request_due = False
        self._barrier: asyncio.Task[None] | None = None
        self._tasks = TaskGroup("acknowledgements")
        client.add_event_handler("stanza_acked", self._on_stanza_acked)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def send(self, stanza: Any) -> None:
        """Write the stanza and wait for the server to confirm it."""
        key = next(self._keys)
        self._by_stanza[id(stanza)] = key
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[key] = done
        try:
            stanza.send()
            self._request(key)
            await asyncio.wait_for(asyncio.shield(done), self._timeout)
        except TimeoutError:
            self._on_timeout()
            raise AckTimeout(f"the XMPP server did not acknowledge within {self._timeout:g} s",
                             retry_after=self._retry_after) from None
        finally:
            self._pending.pop(key, None)
            self._by_stanza.pop(id(stanza), None)

    def fail_all(self, error: GatewayError) -> None:
        for done in self._pending.values():
            if not done.done():
                done.set_exception(error)
        self._unrequested.clear()
        self._ping_out = False

    def release(self) -> None:
        if self._barrier is not None:
            self._barrier.cancel()

    def _request(self, key: int) -> None:
        if self.uses_sm:
            if not self._sm_request_due:
                self._sm_request_due = True
                asyncio.get_running_loop().call_soon(self._send_sm_request)
            return
        if self._ping_out:
            self._unrequested.append(key)
            return
        self._ping_out = True
        self._start_barrier([key])

    def _send_sm_request(self) -> None:
        self._sm_request_due = False
        if self.active:
            self._client.send(sm_stanza.RequestAck(self._client))

    def _on_stanza_acked(self, stanza: Any) -> None:
        done = self._pending.get(self._by_stanza.get(id(stanza), -1))
        if done is not None and not done.done():
            done.set_result(None)

    def _start_barrier(self, batch: list[int]) -> None:
        self._barrier = self._tasks.spawn(self._ping_barrier(batch), "ping barrier")

    async def _ping_barrier(self, batch: list[int]) -> None:
        iq = self._client.Iq()
        iq["type"] = "get"
        iq["to"] = self._client.boundjid.domain
        iq.append(ET.Element(f"{{{PING_NS}}}ping"))
        try:
            await iq.send(timeout=self._timeout)
        except IqError:
            pass  # an error reply still proves the server processed what came before
        except (IqTimeout, asyncio.CancelledError):
            return
        for key in batch:
            done = self._pending.get(key)
            if done is not None and not done.done():
                done.set_result(None)
        self._ping_out = False
        if self._unrequested and self.active:
            next_batch, self._unrequested = self._unrequested, []
            self._ping_out = True
            self._start_barrier(next_batch)
