"""The built-in alert actions of a bot with ``alertmanager_url``: answering an alert's
message with ``silence 2h [comment]``, ``unsilence`` or ``alerts``.

The bot's runtime asks ``AlertActions.answer`` first about each message its account
receives: ``None`` means it is no alert action (the runtime POSTs it to the webhook);
text is the reply, whether the action's result or why not.

Which alert: the message an XEP-0461 reply names (``reply_to.id``), else the one whose
first line the message quotes (``> *[FIRING:1]* DiskFull``), as remembered by
``alert_memory.Remember`` when it was sent (for 7 days). ``silence`` creates a silence
matching that group's common labels exactly (``isEqual``, not a regex), from now for
the duration, ``createdBy`` the replier's bare JID (and expires the one it made for
that group before, so a group has one silence of the bot's at a time); ``unsilence``
expires the silence these actions last made for that group; ``alerts`` lists what fires now, neither
silenced nor inhibited.

Who may: the replier is the bare JID of the sender in a chat, and in a room the real
JID behind the occupant (a room that hides it leaves the replier unknown: refused).
With ``allow`` configured, only its JIDs may use any action. Without it, for an
alert's message, the JIDs that alert was sent to and the members of the rooms it was
sent to (``room_members``); for ``alerts``, which needs no alert, a JID alerts were sent
to directly in the last 7 days, or, in a room alerts were sent to, its members. Anyone
else gets a refusal, and nothing is asked of Alertmanager. Failures of Alertmanager are
answered as text; no exception leaves ``answer``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from xmpp_post import jids, logs
from xmpp_post.bots.alert_commands import (
    CommandError,
    ListAlerts,
    Silence,
    parse_command,
)
from xmpp_post.bots.alert_memory import AlertMemory, SentAlert, quoted_lines
from xmpp_post.bots.alertmanager_api import Alertmanager, AlertmanagerError
from xmpp_post.incoming import Incoming
from xmpp_post.state.lasting import KeyValue

log = logging.getLogger(__name__)

MAX_LISTED = 15
MAX_LINE = 200
REFUSED = "You may not use this bot's alert actions."
NO_ALERT = ("Reply to an alert's message (or quote its first line) to silence it; "
            "I know the alerts sent in the last 7 days.")
RoomMembers = Callable[[str], Awaitable[frozenset[str]]]


class AlertActions:
    def __init__(self, *, account: str, alertmanager_url: str, allow: frozenset[str] | None,
                 store: KeyValue, http: aiohttp.ClientSession, room_members: RoomMembers,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.account = jids.bare_of(account).lower()
        self.allow = None if allow is None else frozenset(j.lower() for j in allow)
        self.memory = AlertMemory(store)
        self.alertmanager = Alertmanager(alertmanager_url, http)
        self.room_members = room_members
        self.clock = clock

    async def answer(self, message: Incoming) -> str | None:
        """None: not an alert action; a str: the reply text (the action's result or a
        refusal)."""
        command = parse_command(message.body)
        if command is None:
            return None
        if isinstance(command, CommandError):
            return command.text
        try:
            if isinstance(command, ListAlerts):
                return await self._list(message)
            alert = await self._alert_of(message)
            if alert is None:
                return NO_ALERT
            replier = replier_of(message)
            if not await self._may(replier, alert):
                self._refused(message, replier)
                return REFUSED
            assert replier is not None
            if isinstance(command, Silence):
                return await self._silence(alert, replier, command)
            return await self._unsilence(alert, replier)
        except AlertmanagerError as exc:
            return f"Nothing changed: {exc}."
        except Exception:
            log.exception("the alert action of %s failed", self.account)
            return "The alert action failed (see the gateway's log)."

    async def _alert_of(self, message: Incoming) -> SentAlert | None:
        if message.reply_to is not None:
            found = await self.memory.by_message(self.account, message.reply_to.id)
            if found is not None:
                return found
        quotes = quoted_lines(message.body)
        return await self.memory.by_quote(self.account, quotes) if quotes else None

    async def _may(self, replier: str | None, alert: SentAlert) -> bool:
        if replier is None:
            return False
        if self.allow is not None:
            return replier in self.allow
        if replier in alert.recipients:
            return True
        for room in alert.rooms:
            if await self._member(room, replier):
                return True
        return False

    async def _member(self, room: str, replier: str) -> bool:
        try:
            members = await self.room_members(room)
        except Exception:
            log.exception("could not learn the members of %s", room)
            return False
        return replier in {jids.bare_of(member).lower() for member in members}

    async def _may_list(self, message: Incoming, replier: str | None) -> bool:
        if replier is None:
            return False
        if self.allow is not None:
            return replier in self.allow
        if await self.memory.was_sent_to(self.account, replier):
            return True
        room = jids.bare_of(message.room).lower() if message.room else None
        return (room is not None and await self.memory.was_sent_to(self.account, room)
                and await self._member(room, replier))

    async def _silence(self, alert: SentAlert, replier: str, command: Silence) -> str:
        starts = self.clock()
        ends = starts + timedelta(seconds=command.seconds)
        comment = command.comment or f"silenced from XMPP by {replier} (xmpp-post)"
        previous = await self.memory.silence_of(self.account, alert.labels)
        silence_id = await self.alertmanager.create_silence(alert.labels, starts, ends,
                                                            replier, comment)
        await self.memory.keep_silence(self.account, alert.labels, silence_id,
                                       command.seconds)
        replaced = ""
        if previous is not None and previous != silence_id:
            try:  # one silence per group: the new one replaces the one made before
                await self.alertmanager.expire_silence(previous)
                replaced = f", replacing silence {previous}"
            except AlertmanagerError as exc:  # expired or collected already: fine
                logs.event(log, "alert_silence_not_replaced", account=self.account,
                           silence=previous, reason=str(exc))
        logs.event(log, "alert_silenced", account=self.account, by=replier,
                   silence=silence_id, seconds=command.seconds,
                   alertmanager=self.alertmanager.redacted)
        return (f"Silenced until {ends:%Y-%m-%d %H:%M} UTC: {alert.describe()} "
                f"(silence {silence_id}{replaced}). Answer \"unsilence\" to end it.")

    async def _unsilence(self, alert: SentAlert, replier: str) -> str:
        silence_id = await self.memory.silence_of(self.account, alert.labels)
        if silence_id is None:
            return f"I made no silence for {alert.describe()}."
        await self.alertmanager.expire_silence(silence_id)
        await self.memory.forget_silence(self.account, alert.labels)
        logs.event(log, "alert_unsilenced", account=self.account, by=replier,
                   silence=silence_id, alertmanager=self.alertmanager.redacted)
        return f"Silence {silence_id} expired: {alert.describe()} notifies again."

    async def _list(self, message: Incoming) -> str:
        replier = replier_of(message)
        if not await self._may_list(message, replier):
            self._refused(message, replier)
            return REFUSED
        return firing_text(await self.alertmanager.firing())

    def _refused(self, message: Incoming, replier: str | None) -> None:
        logs.event(log, "alert_action_refused", account=self.account,
                   sender=replier or message.sender, room=message.room or "-")


def replier_of(message: Incoming) -> str | None:
    """Who asked: the sender's bare JID in a chat, the occupant's real JID in a room
    (None where the room hides it)."""
    if message.room is not None:
        return jids.bare_of(message.real_jid).lower() if message.real_jid else None
    return jids.bare_of(message.sender).lower()


def firing_text(alerts: list[dict[str, Any]]) -> str:
    """A short list: one line per alert (its name, other labels, summary), the first
    ``MAX_LISTED``."""
    if not alerts:
        return "Nothing is firing (unsilenced)."
    lines = [f"Firing: {len(alerts)}"]
    for alert in alerts[:MAX_LISTED]:
        labels = _mapping(alert.get("labels"))
        annotations = _mapping(alert.get("annotations"))
        name = str(labels.get("alertname") or "alert")
        others = ", ".join(f"{key}={value}" for key, value in sorted(labels.items())[:8]
                           if key != "alertname")
        summary = annotations.get("summary")
        parts = [name, *([others] if others else []),
                 *([str(summary)] if summary else [])]
        line = " — ".join(parts)
        lines.append("• " + " ".join(line.split())[:MAX_LINE])
    if len(alerts) > MAX_LISTED:
        lines.append(f"… and {len(alerts) - MAX_LISTED} more")
    return "\n".join(lines)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
