"""Group chats (XEP-0045) for one client stream: joining, leaving, reflections.

Which domains are group chat services is ``directory.ServiceDirectory``'s job (shared by
every session); ``RoomMemberships.is_service`` answers its questions on this stream.

* ``RoomMemberships`` joins a room on first use and stays in it while the stream lives:

  - the room must already exist: disco#info on it first (``item-not-found`` is 404), and
    if the join still creates it (status 201, a race), the gateway destroys it again and
    answers 404 ``room_not_found``: the gateway never creates rooms;
  - no history is requested; a nick conflict is retried as ``nick-2`` … ``nick-5``;
  - the server's refusal becomes a ``RoomRefused`` carrying the server's condition and
    text (``conditions.ROOM_JOIN``);
  - a group chat message counts as delivered when the room reflects it back to us (same
    stanza id); an error from the room is the server's refusal (a visitor may not speak).

  ``leave_all()`` sends unavailable presence to every room, when the session closes.
  A session stays in at most ``MAX_ROOMS`` rooms: joining one more leaves the least
  recently used room that saw no message within twice ``timeout`` (a sender posting
  to many rooms does not keep its session in all of them, receiving all their traffic).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET

from xmpp_post.errors import AckTimeout, GatewayError, RoomRefused
from xmpp_post.locks import KeyedLocks
from xmpp_post.xmpp.conditions import room_join_refused, room_message_refused
from xmpp_post.xmpp.waiters import Waiters

log = logging.getLogger(__name__)

MUC_NS = "http://jabber.org/protocol/muc"
MUC_USER_NS = MUC_NS + "#user"
MUC_OWNER_NS = MUC_NS + "#owner"
DISCO_INFO_NS = "http://jabber.org/protocol/disco#info"
SELF_PRESENCE = "110"
ROOM_CREATED = "201"
NICK_ATTEMPTS = 5
MAX_ROOMS = 32


@dataclass
class _Membership:
    nick: str  # the nick we have in the room
    asked: str  # the nick the request asked for (before any suffix)
    used: float  # when a message last went to the room (by the memberships' clock)


@dataclass(frozen=True)
class _JoinAnswer:
    nick: str = ""
    created: bool = False
    condition: str = ""
    text: str = ""


class RoomMemberships:
    """The rooms one client stream is in; see the module docstring."""

    def __init__(self, client: Any, timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._timeout = timeout
        self._clock = clock
        self._joined: OrderedDict[str, _Membership] = OrderedDict()  # least recent first
        self._locks = KeyedLocks()
        self._joins: Waiters[_JoinAnswer] = Waiters()
        self._leaves: Waiters[None] = Waiters()
        self._echoes: Waiters[GatewayError | None] = Waiters()
        client.add_event_handler("presence", self._on_presence)
        client.add_event_handler("message", self._on_message)
        client.add_event_handler("message_error", self._on_message_error)

    @property
    def rooms(self) -> dict[str, str]:
        """Room JID -> our nick in it."""
        return {room: m.nick for room, m in self._joined.items()}

    # group chat services ----------------------------------------------------------------

    async def identities(self, jid: str) -> list[str] | None:
        """Categories of ``jid``'s disco#info identities; None if it could not be asked."""
        try:
            reply = await self._disco_info(jid)
        except (IqError, IqTimeout):
            return None
        query = reply.xml.find(f"{{{DISCO_INFO_NS}}}query")
        if query is None:
            return []
        return [i.get("category", "") for i in query.findall(f"{{{DISCO_INFO_NS}}}identity")]

    async def is_service(self, domain: str) -> bool | None:
        categories = await self.identities(domain)
        return None if categories is None else "conference" in categories

    async def _disco_info(self, jid: str) -> Any:
        iq = self._client.make_iq_get(ito=jid)
        iq.append(ET.Element(f"{{{DISCO_INFO_NS}}}query"))
        return await iq.send(timeout=self._timeout)

    # joining ----------------------------------------------------------------------------

    async def ensure_joined(self, room: str, nick: str, password: str | None) -> str:
        """Be in ``room`` (asking for ``nick``); return the nick we have there."""
        async with self._locks.hold(room):
            member = self._joined.get(room)
            if member is not None and member.asked == nick:
                member.used = self._clock()
                self._joined.move_to_end(room)
                return member.nick
            if member is not None:
                await self._leave(room, member.nick)
            else:
                await self._check_exists(room)
            for attempt in range(1, NICK_ATTEMPTS + 1):
                candidate = nick if attempt == 1 else f"{nick}-{attempt}"
                answer = await self._join_once(room, candidate, password)
                if answer.condition == "conflict":
                    log.info("nick %r taken in %s; trying another", candidate, room)
                    continue
                if answer.condition:
                    raise room_join_refused(room, answer.condition, answer.text)
                if answer.created:
                    await self._destroy_created(room, answer.nick)
                    raise RoomRefused(f"the room {room} does not exist (the gateway does "
                                      "not create rooms)", code="room_not_found",
                                      condition="item-not-found")
                self._joined[room] = _Membership(answer.nick, nick, self._clock())
                log.info("joined %s as %r", room, answer.nick)
                self._trim()
                return answer.nick
            raise RoomRefused(f"the nicknames {nick!r} to {nick}-{NICK_ATTEMPTS} are all "
                              f"taken in {room}", code="nick_conflict", condition="conflict")

    async def _check_exists(self, room: str) -> None:
        try:
            await self._disco_info(room)
        except IqError as exc:
            condition = exc.iq["error"]["condition"]
            if condition == "item-not-found":
                text = exc.iq["error"]["text"]
                raise RoomRefused(f"the room {room} does not exist"
                                  + (f": {text}" if text else ""), code="room_not_found",
                                  condition=condition, text=text) from None
            # Other refusals (a hidden room, say) are left for the join to explain.
        except IqTimeout:
            raise AckTimeout(f"the group chat service did not answer about {room} within "
                             f"{self._timeout:g} s", code="room_timeout") from None

    async def _join_once(self, room: str, nick: str, password: str | None) -> _JoinAnswer:
        presence = self._client.make_presence(pto=f"{room}/{nick}")
        x = ET.SubElement(presence.xml, f"{{{MUC_NS}}}x")
        ET.SubElement(x, f"{{{MUC_NS}}}history", {"maxstanzas": "0"})
        if password:
            ET.SubElement(x, f"{{{MUC_NS}}}password").text = password
        answer = self._joins.expect(room)
        presence.send()
        try:
            return await asyncio.wait_for(asyncio.shield(answer), self._timeout)
        except TimeoutError:
            raise AckTimeout(f"the room {room} did not answer the join within "
                             f"{self._timeout:g} s", code="room_timeout") from None
        finally:
            self._joins.forget(room, answer)

    async def _destroy_created(self, room: str, nick: str) -> None:
        log.warning("joining %s created it; destroying it again", room)
        iq = self._client.make_iq_set(ito=room)
        query = ET.SubElement(iq.xml, f"{{{MUC_OWNER_NS}}}query")
        destroy = ET.SubElement(query, f"{{{MUC_OWNER_NS}}}destroy")
        ET.SubElement(destroy, f"{{{MUC_OWNER_NS}}}reason").text = \
            "created by accident: xmpp-post only posts to existing rooms"
        try:
            await iq.send(timeout=self._timeout)
        except (IqError, IqTimeout) as exc:
            log.warning("could not destroy %s: %r; leaving it", room, exc)
            await self._leave(room, nick)

    # leaving ----------------------------------------------------------------------------

    def _trim(self) -> None:
        """Leave least recently used rooms while there are more than MAX_ROOMS (only
        rooms quiet for longer than a message's acknowledgement and reflection take)."""
        quiet_since = self._clock() - 2 * self._timeout
        while len(self._joined) > MAX_ROOMS:
            room, member = next(iter(self._joined.items()))
            if member.used > quiet_since or self._locks.locked(room):
                return
            del self._joined[room]
            log.info("leaving %s, the least recently used of more than %d rooms", room,
                     MAX_ROOMS)
            self._client.make_presence(pto=f"{room}/{member.nick}", ptype="unavailable").send()

    async def _leave(self, room: str, nick: str) -> None:
        self._joined.pop(room, None)
        left = self._leaves.expect(room)
        self._client.make_presence(pto=f"{room}/{nick}", ptype="unavailable").send()
        try:
            await asyncio.wait_for(asyncio.shield(left), self._timeout)
        except TimeoutError:
            log.warning("no answer from %s to leaving it", room)
        finally:
            self._leaves.forget(room, left)

    async def leave_all(self, timeout: float) -> None:
        """Leave every room, waiting up to ``timeout`` for the rooms to confirm."""
        if not self._joined:
            return
        waits = []
        for room, member in list(self._joined.items()):
            waits.append((room, self._leaves.expect(room)))
            self._client.make_presence(pto=f"{room}/{member.nick}", ptype="unavailable").send()
        self._joined.clear()
        await asyncio.wait([future for _, future in waits], timeout=timeout)
        for room, future in waits:
            self._leaves.forget(room, future)

    def reset(self, error: GatewayError) -> None:
        """The stream is gone: no rooms, and everyone waiting on one fails."""
        self._joined.clear()
        self._joins.fail_all(error)
        self._echoes.fail_all(error)
        self._leaves.fail_all(error)

    # sending ----------------------------------------------------------------------------

    def expect_echo(self, room: str, stanza_id: str) -> asyncio.Future[GatewayError | None]:
        return self._echoes.expect((room, stanza_id))

    async def wait_echo(self, room: str, stanza_id: str,
                        echo: asyncio.Future[GatewayError | None]) -> None:
        """Wait for the room to reflect the message; raise its refusal or AckTimeout."""
        try:
            error = await asyncio.wait_for(asyncio.shield(echo), self._timeout)
        except TimeoutError:
            raise AckTimeout(f"the room {room} did not pass the message on within "
                             f"{self._timeout:g} s", code="room_timeout") from None
        finally:
            self._echoes.forget((room, stanza_id), echo)
        if error is not None:
            raise error

    def forget_echo(self, room: str, stanza_id: str,
                    echo: asyncio.Future[GatewayError | None]) -> None:
        self._echoes.forget((room, stanza_id), echo)

    # incoming ---------------------------------------------------------------------------

    def _on_presence(self, presence: Any) -> None:
        sender = presence["from"]
        room, nick = str(sender.bare), str(sender.resource)
        kind = presence["type"]
        if kind == "error":
            error = presence["error"]
            self._joins.resolve(room, _JoinAnswer(condition=error["condition"] or "unknown",
                                                  text=error["text"] or ""))
            return
        statuses = _statuses(presence)
        member = self._joined.get(room)
        mine = SELF_PRESENCE in statuses or (member is not None and member.nick == nick)
        if not mine:
            return
        if kind == "unavailable":
            if self._joined.get(room) is member and member is not None:
                log.info("no longer in %s (%s)", room, ", ".join(sorted(statuses)) or "left")
                self._joined.pop(room, None)
            self._leaves.resolve(room, None)
        elif SELF_PRESENCE in statuses:
            self._joins.resolve(room, _JoinAnswer(nick=nick, created=ROOM_CREATED in statuses))

    def _on_message(self, message: Any) -> None:
        if message["type"] != "groupchat":
            return
        sender = message["from"]
        room = str(sender.bare)
        member = self._joined.get(room)
        if member is not None and str(sender.resource) == member.nick and message["id"]:
            self._echoes.resolve((room, message["id"]), None)

    def _on_message_error(self, message: Any) -> None:
        room = str(message["from"].bare)
        if not message["id"]:
            return
        error = message["error"]
        condition, text = error["condition"] or "unknown", error["text"] or ""
        if condition == "not-acceptable":
            self._joined.pop(room, None)  # the room no longer counts us as an occupant
        self._echoes.resolve((room, message["id"]), room_message_refused(room, condition, text))


def _statuses(presence: Any) -> set[str]:
    x = presence.xml.find(f"{{{MUC_USER_NS}}}x")
    if x is None:
        return set()
    return {s.get("code", "") for s in x.findall(f"{{{MUC_USER_NS}}}status")}
