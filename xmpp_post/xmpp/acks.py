"""Proof that the server has a stanza: acknowledgement tracking for one client stream.

Every delivery is one entry in a queue, in the order its stanza was written; the server
handles a stream in order, so one answer settles every entry up to some point:

* With stream management (XEP-0198) the server's ``<a h=…/>`` counts the stanzas it
  has handled. Once the session is open this module counts the stanzas written itself
  (slixmpp's own ones through an ``out_sync`` filter, which runs just before they are
  written), so one ``<a/>`` settles the entries it covers without a per-stanza event.
  One ``<r/>`` goes out with each write that carries stanzas not yet asked about
  (``Client`` appends it to the write), whether or not earlier ones were answered.
  A stanza written while every request for proof is answered (the server has nothing
  of ours to work on) goes out at once, so the server works while this process handles
  the next HTTP requests; stanzas written while one is outstanding wait for the end of
  the event loop's turn and share one write and one ``<r/>`` (measured with 8
  connections: ~6 % more messages per second and a lower median latency, for more CPU
  per message in both processes: fewer stanzas per write).
* Otherwise an XMPP ping (XEP-0199) sent after the stanzas has been answered: the server
  can only do that after processing everything before it on the stream. While one ping
  is outstanding new stanzas wait for the next, sent as soon as the answer arrives.

A single timer per stream (not one per delivery) watches the oldest unanswered entry:
if it waits longer than ``timeout``, it fails with ``AckTimeout`` and ``on_failure`` is
called (the session closes, failing the rest), as it is for an ``<a/>`` that counts more
stanzas than were sent. Stanzas are tracked by their position, so
client-chosen stanza ids may repeat; an entry carries its stanza id for whoever needs to
match an answer to it (a refusal, a receipt).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Iq, Message, Presence
from slixmpp.xmlstream import ET

from xmpp_post.errors import AckTimeout, GatewayError
from xmpp_post.tasks import TaskGroup

log = logging.getLogger(__name__)

PING_NS = "urn:xmpp:ping"
SM_NS = "urn:xmpp:sm:3"
REQUEST = f"<r xmlns='{SM_NS}'/>".encode()
MAX_SEQ = 2**32  # XEP-0198 counts modulo 2^32
_COUNTED = (Message, Presence, Iq)


class _Entry:
    """One delivery waiting for the server's proof."""

    __slots__ = ("done", "position", "sent_at", "stanza_id")

    def __init__(self, position: int, stanza_id: str, done: asyncio.Future[None],
                 sent_at: float) -> None:
        self.position = position
        self.stanza_id = stanza_id
        self.done = done
        self.sent_at = sent_at


class AckTracker:
    """Write stanzas and wait for the server's proof; see the module docstring."""

    def __init__(self, client: Any, *, timeout: float, retry_after: int,
                 on_failure: Callable[[str], None]) -> None:
        self._client = client
        self._timeout = timeout
        self._retry_after = retry_after
        self._on_failure = on_failure
        self.uses_sm = False
        self.active = False  # requests go out only while the session is alive
        self._entries: deque[_Entry] = deque()
        self._written = 0  # stanzas written (with SM: as XEP-0198 counts them)
        self._handled = 0  # stanzas the server has confirmed
        self._asked = 0  # stanzas covered by a request for proof (<r/> or ping) sent
        self._ping_out = False
        self._barrier: asyncio.Task[None] | None = None
        self._tasks = TaskGroup("acknowledgements")
        self._watchdog: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> int:
        return len(self._entries)

    def start(self, uses_sm: bool) -> None:
        """The session is open: take over from slixmpp's XEP-0198 plugin, if it is used."""
        self.uses_sm = uses_sm
        self.active = True
        client = self._client
        if not uses_sm:
            return
        # The plugin enabled stream management and keeps answering the server's <r/>;
        # counting what we send, and the server's answers, is done here from now on.
        self._written = self._handled = self._asked = client.take_over_acks(
            self._count_outgoing)
        client.on_ack = self._on_ack
        client.before_flush = self._before_flush

    async def send(self, data: bytes, stanza_id: str) -> None:
        """Write one stanza (serialised) and wait for the server to confirm it."""
        loop = asyncio.get_running_loop()
        self._written += 1
        self._client.send_raw(data)
        if self.uses_sm and self._asked == self._handled:
            self._client.flush()  # the server is idle: it starts now (see the module doc)
        done: asyncio.Future[None] = loop.create_future()
        entry = _Entry(self._written, stanza_id, done, loop.time())
        self._entries.append(entry)
        if self._watchdog is None:
            self._watchdog = loop.call_at(entry.sent_at + self._timeout, self._check)
        if not self.uses_sm and not self._ping_out:
            self._ping()
        await done

    def fail_all(self, error: GatewayError) -> None:
        for entry in self._entries:
            if not entry.done.done():
                entry.done.set_exception(error)
        self._entries.clear()
        self._ping_out = False
        self._stop_watchdog()

    def release(self) -> None:
        self._stop_watchdog()
        if self._barrier is not None:
            self._barrier.cancel()

    # stream management --------------------------------------------------------------

    def _count_outgoing(self, stanza: Any) -> Any:
        if isinstance(stanza, _COUNTED):
            self._written += 1
        return stanza

    def _before_flush(self, outbox: list[bytes]) -> None:
        """Called by the client just before a write: ask about what it carries."""
        if self._asked != self._written and self.active:
            self._asked = self._written
            outbox.append(REQUEST)

    def _on_ack(self, h: str | None) -> None:
        try:
            count = int(h or "")
        except ValueError:
            log.warning("ignored an acknowledgement with a malformed count %r", h)
            return
        newly = (count - self._handled) % MAX_SEQ
        if newly > self._written - self._handled:
            self._on_failure(f"the server acknowledged {newly} stanzas, but only "
                             f"{self._written - self._handled} were unconfirmed")
            return
        self._handled += newly
        self._settle(self._handled)

    def _settle(self, upto: int) -> None:
        entries = self._entries
        while entries and entries[0].position <= upto:
            done = entries.popleft().done
            if not done.done():
                done.set_result(None)

    # ping fallback ------------------------------------------------------------------

    def _ping(self) -> None:
        self._ping_out = True
        self._asked = self._written
        self._barrier = self._tasks.spawn(self._ping_barrier(self._asked), "ping barrier")

    async def _ping_barrier(self, upto: int) -> None:
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
        self._ping_out = False
        self._settle(upto)
        if self._written != self._asked and self.active:
            self._ping()

    # the one timer ------------------------------------------------------------------

    def _check(self) -> None:
        self._watchdog = None
        entries = self._entries
        if not entries:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        oldest = entries[0]
        if oldest.sent_at + self._timeout > now:
            self._watchdog = loop.call_at(oldest.sent_at + self._timeout, self._check)
            return
        error = AckTimeout(f"the XMPP server did not acknowledge within {self._timeout:g} s",
                           retry_after=self._retry_after)
        while entries and entries[0].sent_at + self._timeout <= now:
            done = entries.popleft().done
            if not done.done():
                done.set_exception(error)
        self._on_failure(f"no acknowledgement from the server within {self._timeout:g} s")

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
