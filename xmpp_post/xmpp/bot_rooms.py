"""A bot session's rooms: joining them (no history), who is in them, when a join
completed.

``BotRooms`` keeps, per room: our nick (the one asked for, or the one the room gave),
whether our join completed on the current stream (our own presence, status 110, came
back), the occupants' real bare JIDs by nick (rooms that reveal them), and the room's
members, admins and owners where the bot may read those lists. ``reset()`` forgets what
a stream knew when it ends; the nicks stay, to rejoin.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET

from xmpp_post.tasks import TaskGroup
from xmpp_post.xmpp.bot_stanzas import Rooms, occupant

log = logging.getLogger(__name__)

MUC_NS = "http://jabber.org/protocol/muc"
MUC_ADMIN_NS = MUC_NS + "#admin"


class BotRooms:
    def __init__(self, owner: str, nick: str, rooms: tuple[str, ...], timeout: float,
                 tasks: TaskGroup) -> None:
        self._owner = owner  # the bot's JID, for logs
        self._timeout = timeout
        self._tasks = tasks
        self._nicks = dict.fromkeys(rooms, nick)
        self._joined: dict[str, asyncio.Event] = {room: asyncio.Event() for room in rooms}
        self._occupants: dict[str, dict[str, str]] = {}
        self._affiliated: dict[str, frozenset[str]] = {}

    def join_all(self, client: Any) -> None:
        for room, nick in self._nicks.items():
            presence = client.make_presence(pto=f"{room}/{nick}")
            x = ET.SubElement(presence.xml, f"{{{MUC_NS}}}x")
            ET.SubElement(x, f"{{{MUC_NS}}}history", {"maxstanzas": "0"})
            presence.send()

    def reset(self) -> None:
        for event in self._joined.values():
            event.clear()
        self._occupants.clear()

    def known(self) -> Rooms:
        joined = frozenset(room for room, event in self._joined.items() if event.is_set())
        return Rooms(self._nicks, joined, self._occupants)

    def on_presence(self, presence: Any, client: Any) -> None:
        seen = occupant(presence.xml)
        if seen is None or seen.room not in self._nicks:
            if presence["type"] == "error" and presence["from"].bare in self._nicks:
                log.warning("bot %s could not join %s: %s", self._owner,
                            presence["from"].bare, presence["error"]["condition"])
            return
        occupants = self._occupants.setdefault(seen.room, {})
        if seen.gone:
            occupants.pop(seen.nick, None)
            if seen.own:
                self._joined[seen.room].clear()
            return
        if seen.real_jid:
            occupants[seen.nick] = seen.real_jid
        if seen.own and not self._joined[seen.room].is_set():
            self._nicks[seen.room] = seen.nick
            self._joined[seen.room].set()
            self._tasks.spawn(self._read_affiliations(client, seen.room),
                              f"affiliations of {seen.room}")

    async def _read_affiliations(self, client: Any, room: str) -> None:
        """The room's members, admins and owners, where the bot may read them."""
        found: set[str] = set()
        for affiliation in ("member", "admin", "owner"):
            iq = client.make_iq_get(ito=room)
            query = ET.SubElement(iq.xml, f"{{{MUC_ADMIN_NS}}}query")
            ET.SubElement(query, f"{{{MUC_ADMIN_NS}}}item", {"affiliation": affiliation})
            try:
                answer = await iq.send(timeout=self._timeout)
            except (IqError, IqTimeout):
                return  # not allowed (or no answer): the occupants are all we know
            for item in answer.xml.iter(f"{{{MUC_ADMIN_NS}}}item"):
                if item.get("jid"):
                    found.add(item.get("jid").partition("/")[0])
        self._affiliated[room] = frozenset(found)

    async def joined(self, room: str) -> None:
        """Return once the bot is in ``room`` (one of its rooms; its join completed)."""
        await self._joined[room].wait()

    async def members(self, room: str) -> frozenset[str]:
        """The bare JIDs the bot knows in ``room``: its occupants' real JIDs (where the
        room reveals them) and its affiliation lists (where the bot may read them)."""
        present = frozenset(self._occupants.get(room, {}).values())
        return present | self._affiliated.get(room, frozenset())
