"""Refusals of sent messages: a ``<message type='error'/>`` matched to the message it answers.

A server that will not deliver a message (no such account, a full offline store, a
block, an unreachable remote server) answers the sender with an error stanza that
carries the message's id and comes from its recipient's address.

* For a recipient on the sender's own server the error is written before the
  acknowledgement of the message (the server handles a stream in order), so once the
  acknowledgement is in, ``settle()`` knows whether the message was refused.
* For a recipient on another server the error may come later: ``settle(watch, wait)``
  can wait for it (``bounce_wait``). One that arrives after the answer is counted and
  logged with the request id of its message (``release(..., remember=True)`` keeps the
  last ``RECENT`` such messages of the stream for that).

Messages are matched by (the recipient's bare JID, the stanza id). Generated ids are
unique; a client-chosen id may repeat, so the session has at most one message per
(recipient, id) waiting at a time. Errors for anything else (a group chat room's, which
``rooms`` handles, or a stranger's guess) are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xmpp_post import jids, logs
from xmpp_post.errors import RecipientRefused
from xmpp_post.xmpp.conditions import BLOCKED_NS, recipient_refused

log = logging.getLogger(__name__)

RECENT = 64  # messages to other servers remembered after their answer, per stream

Key = tuple[str, str]  # (recipient's bare JID, stanza id)
Observer = Callable[[str, bool], None]  # (condition, came after the answer)


@dataclass(eq=False)
class Watch:
    """One sent message whose refusal would matter."""

    to: str
    key: Key
    request_id: str
    error: RecipientRefused | None = None
    waiter: asyncio.Future[None] | None = None


class Refusals:
    """The refusals of one client stream; see the module docstring."""

    def __init__(self, client: Any, *, retry_after: int,
                 observe: Observer | None = None) -> None:
        self._retry_after = retry_after
        self._observe = observe
        self._watching: dict[Key, Watch] = {}
        self._recent: OrderedDict[Key, tuple[str, str]] = OrderedDict()  # -> (to, request id)
        client.add_event_handler("message_error", self._on_error)

    def watch(self, to: str, stanza_id: str) -> Watch:
        """Start watching for a refusal of the message about to be sent."""
        watch = Watch(to, (jids.bare_of(to), stanza_id), logs.REQUEST_ID.get())
        self._watching[watch.key] = watch
        return watch

    async def settle(self, watch: Watch, wait: float = 0.0) -> None:
        """After the acknowledgement: raise the refusal if one came, or wait up to
        ``wait`` seconds for one."""
        if watch.error is None and wait > 0:
            watch.waiter = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(watch.waiter), wait)
        if watch.error is not None:
            error = watch.error
            if self._observe is not None:
                self._observe(error.condition or "unknown", False)
            logs.event(log, "message_refused", to=watch.to, condition=error.condition,
                       text=error.text)
            raise error

    def release(self, watch: Watch, *, remember: bool = False) -> None:
        """Stop watching; ``remember``: count and log a refusal that comes later."""
        if self._watching.get(watch.key) is watch:
            del self._watching[watch.key]
        if watch.waiter is not None and not watch.waiter.done():
            watch.waiter.cancel()
        if remember and watch.error is None:
            self._recent[watch.key] = (watch.to, watch.request_id)
            self._recent.move_to_end(watch.key)
            while len(self._recent) > RECENT:
                self._recent.popitem(last=False)

    def _on_error(self, message: Any) -> None:
        key = (str(message["from"].bare), str(message["id"]))
        watch = self._watching.get(key)
        if watch is not None:
            if watch.error is None:
                watch.error = self._refusal(watch.to, message)
                if watch.waiter is not None and not watch.waiter.done():
                    watch.waiter.set_result(None)
            return
        recent = self._recent.pop(key, None)
        if recent is None:
            return  # not a message we wait on: a room's (see rooms) or nobody's
        to, request_id = recent
        refusal = self._refusal(to, message)
        if self._observe is not None:
            self._observe(refusal.condition or "unknown", True)
        token = logs.REQUEST_ID.set(request_id)
        try:
            logs.event(log, "message_refused_after_answer", logging.WARNING, to=to,
                       condition=refusal.condition, text=refusal.text)
        finally:
            logs.REQUEST_ID.reset(token)

    def _refusal(self, to: str, message: Any) -> RecipientRefused:
        error = message["error"]
        return recipient_refused(
            to, error["condition"] or "", error["type"] or "", error["text"] or "",
            blocked=message.xml.find(f".//{{{BLOCKED_NS}}}blocked") is not None,
            retry_after=self._retry_after)
