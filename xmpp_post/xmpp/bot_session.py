"""A bot's long-lived XMPP session: online, in its rooms, handing each message on.

``BotSession.start()`` starts its task, which connects (TLS verified), reads the
archive (below), comes online with presence of priority 0 (contacts see the bot; the
server then hands over its offline store), asks for carbon copies (XEP-0280: what the
gateway's sending sessions of the same account receive reaches the bot), joins the
bot's rooms with its nick, asking for no history, and pings the server every
``PING_EVERY`` seconds. When the stream ends (a network failure, a server restart, a
ping unanswered) it connects again, backing off
from 1 to ``MAX_BACKOFF`` seconds, and rejoins.

Each message received is read (``bot_stanzas.read_message``) and, unless skipped,
handed to ``deliver(incoming, archive_id, stanza_id)`` one at a time, in the order
received (the bot's runner queues it durably). Where the server archives the account's
messages (XEP-0313), each new stream first reads the archive from where
``read_from(since)`` says (``bot_archive``: after the last message queued or handled;
or from ``since``, the time the stream came online less a margin, for the first holder
of a bot run by several instances), so nothing sent while the gateway was down or
between two streams is missed; messages that arrive meanwhile wait, so the order
holds. An OMEMO message is decrypted by ``omemo`` (``bot_omemo.BotOmemo``: the bot has
OMEMO on) and handed on with ``encrypted`` set, or skipped and counted:
``skipped("encrypted")`` without ``omemo``, ``skipped("undecryptable")`` when it cannot
be read (never handed on as it came).

``send_reply`` answers a message (to its sender; in a room, to the room as a XEP-0461
reply); the reply to an encrypted message is encrypted, or not sent at all
(``OmemoUnavailable``). ``room_members``: the bare JIDs the bot knows in one of its
rooms. Only the kernel's types and callbacks are known here: neither the state, nor HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

from xmpp_post import jids
from xmpp_post.errors import OmemoUnavailable
from xmpp_post.incoming import ArchivePoint, Incoming
from xmpp_post.tasks import TaskGroup
from xmpp_post.xmpp import bot_stanzas
from xmpp_post.xmpp.bot_archive import ArchiveReader
from xmpp_post.xmpp.bot_omemo import Undecryptable
from xmpp_post.xmpp.bot_rooms import BotRooms
from xmpp_post.xmpp.client import Client, tls_context
from xmpp_post.xmpp.session import SessionOptions

log = logging.getLogger(__name__)

PING_NS = "urn:xmpp:ping"
PING_EVERY = 30.0
SINCE_MARGIN = 60.0  # seconds before coming online a first archive read starts (clocks)
MAX_BACKOFF = 60.0
REPLY_WAIT = 60.0  # seconds a reply waits for the session to be online

Deliver = Callable[[Incoming, str | None, str | None], Awaitable[None]]
ReadFrom = Callable[[str], Awaitable[ArchivePoint | None]]


class Decryptor(Protocol):
    """The bot's OMEMO (``bot_omemo.BotOmemo``)."""

    async def ready(self, client: Any) -> None:
        """Publish the bot's device, on a stream that just came online."""
        ...

    async def decrypt(self, message: Any, client: Any, sender: str, to: str,
                      stanza_id: str | None = None) -> str | None:
        """The body of an encrypted ``<message/>``, None when it has none or was read
        already (``stanza_id``); ``Undecryptable`` when it cannot be read."""
        ...

    async def reply(self, client: Any, message: Incoming, body: str, subject: str | None,
                    thread: str | None) -> bytes:
        """The reply to ``message``, encrypted; ``OmemoUnavailable`` when it cannot be."""
        ...


@dataclass(frozen=True)
class BotAccount:
    """Who the bot is and where it listens."""

    jid: str
    password: str
    nick: str
    rooms: tuple[str, ...] = ()
    mentions_only: bool = True


def _drop(client: Client) -> None:
    """Close ``client``'s connection and stop its tasks: a client is never reused."""
    client.cancel_connection_attempt()
    client.abort()
    client.stop_send_loop()


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _happened: event.set()


class BotSession:
    """See the module docstring."""

    def __init__(self, account: BotAccount, options: SessionOptions, deliver: Deliver, *,
                 read_from: ReadFrom | None = None,
                 skipped: Callable[[str], None] | None = None,
                 omemo: Decryptor | None = None) -> None:
        self.account = account
        self._options = options
        self._deliver = deliver
        self._read_from = read_from
        self._skipped = skipped
        self._omemo = omemo
        self.online = asyncio.Event()
        self.offline = asyncio.Event()  # set while no stream is up (after the first)
        self.connections = 0  # streams opened so far
        self._client: Client | None = None
        self._tasks = TaskGroup(f"bot {account.jid}")
        self._inbox: asyncio.Queue[tuple[Any, str | None, str | None]] = asyncio.Queue()
        self._held: list[tuple[Any, str | None, str | None]] | None = None
        self._archive = ArchiveReader(account.jid, options.ack_timeout)
        self.rooms = BotRooms(account.jid, account.nick, account.rooms, options.ack_timeout,
                              self._tasks)

    # lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks.spawn(self._run(), "session")
        self._tasks.spawn(self._consume(), "deliveries")

    async def stop(self) -> None:
        """Go offline and stop; idempotent."""
        client, self._client = self._client, None
        self.online.clear()
        if client is not None and client.transport is not None:
            with contextlib.suppress(Exception):
                client.send_presence(ptype="unavailable")
                await asyncio.wait_for(client.disconnect(wait=1.0), 2.0)
        await self._tasks.close()
        if client is not None:
            _drop(client)

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            client = self._make_client()
            ended = asyncio.Event()
            client.add_event_handler("disconnected", _setter(ended))
            try:
                await self._connect(client)
            except Exception as exc:
                log.warning("bot %s cannot connect (%s); trying again in %g s",
                            self.account.jid, exc or type(exc).__name__, backoff)
                _drop(client)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            backoff = 1.0
            self.connections += 1
            try:
                await self._serve(client, ended)
            except Exception:
                log.exception("bot %s: the session failed; connecting again",
                              self.account.jid)
            finally:
                self._client = None
                self.online.clear()
                self.offline.set()
                self.rooms.reset()
                _drop(client)
            log.info("bot %s: the stream ended; connecting again", self.account.jid)
            await asyncio.sleep(1.0)

    def _make_client(self) -> Client:
        options = self._options
        resource = "xmpp-post-bot." + secrets.token_hex(3)
        client = Client(f"{self.account.jid}/{resource}", self.account.password,
                        ssl_context=tls_context(options.ca_file,
                                                options.insecure_skip_tls_verify))
        client.enable_direct_tls = options.direct_tls
        client.enable_starttls = not options.direct_tls
        client.enable_plaintext = False
        client.register_handler(Callback("bot message", StanzaPath("message"),
                                         self._on_message))
        client.register_handler(Callback("bot presence", StanzaPath("presence"),
                                         lambda p: self.rooms.on_presence(p, client)))
        return client

    async def _connect(self, client: Client) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def fail(why: str) -> Callable[[Any], None]:
            def settle(_event: Any) -> None:
                if not ready.done():
                    ready.set_exception(ConnectionError(why))
            return settle

        def started(_event: Any) -> None:
            if not ready.done():
                ready.set_result(None)

        client.add_event_handler("session_start", started)
        client.add_event_handler("failed_all_auth", fail("the server refused the login"))
        client.add_event_handler("reconnect_delay", fail("the server is unreachable"))
        client.add_event_handler("disconnected", fail("the connection was closed"))
        client.add_event_handler("stream_error", fail("stream error"))
        server = self._options.server
        client.connect(*(server or (None, None)))
        await asyncio.wait_for(ready, self._options.connect_timeout)

    async def _serve(self, client: Client, ended: asyncio.Event) -> None:
        self._client = client
        self._held = []  # live messages wait while the archive is read
        since = datetime.fromtimestamp(time.time() - SINCE_MARGIN, UTC)
        client.send_presence(ppriority=0)
        await self._enable_carbons(client)
        if self._omemo is not None:
            try:
                await self._omemo.ready(client)
            except Exception as exc:  # the bot still serves; decrypting will say why not
                log.warning("bot %s: its OMEMO device could not be published: %s",
                            self.account.jid, exc)
        self.rooms.join_all(client)
        try:
            await self._catch_up(client, since.strftime("%Y-%m-%dT%H:%M:%SZ"))
        finally:
            held, self._held = self._held or [], None
            for entry in held:
                self._inbox.put_nowait(entry)
        self.offline.clear()
        self.online.set()
        log.info("bot %s is online (%d rooms)", self.account.jid, len(self.account.rooms))
        while not ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), PING_EVERY)
                break
            if not await self._ping(client):
                log.warning("bot %s: the server did not answer a ping", self.account.jid)
                break

    async def _enable_carbons(self, client: Client) -> None:
        """Ask for copies of what the account's other resources receive (XEP-0280): a
        reply sent to the full JID of a gateway's sending session reaches the bot."""
        iq = client.make_iq_set()
        iq.append(ET.Element(f"{{{bot_stanzas.CARBONS_NS}}}enable"))
        with contextlib.suppress(IqError, IqTimeout):
            await iq.send(timeout=self._options.ack_timeout)

    async def _ping(self, client: Client) -> bool:
        iq = client.make_iq_get(ito=self.account.jid.partition("@")[2])
        iq.append(ET.Element(f"{{{PING_NS}}}ping"))
        try:
            await iq.send(timeout=self._options.ack_timeout)
        except IqError:
            return True  # an answer, even an error, proves the stream works
        except IqTimeout:
            return False
        return True

    # rooms ----------------------------------------------------------------------------

    async def joined(self, room: str) -> None:
        """Return once the bot is in ``room`` (one of its rooms; its join completed)."""
        await self.rooms.joined(room)

    async def room_members(self, room: str) -> frozenset[str]:
        """The bare JIDs the bot knows in ``room`` (``BotRooms.members``)."""
        return await self.rooms.members(room)

    # receiving ------------------------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        xml = message.xml
        if self._archive.offer(xml):
            return
        carbon, copied = bot_stanzas.unwrap_carbon(xml, self.account.jid)
        if carbon:
            if copied is None:
                return
            xml = copied
        entry = (xml, None, None)
        if self._held is not None:
            self._held.append(entry)
        else:
            self._inbox.put_nowait(entry)

    async def _consume(self) -> None:
        """Hand each received message on, one at a time, in order."""
        while True:
            xml, delay, archive_id = await self._inbox.get()
            try:
                await self._hand_on(xml, delay, archive_id)
            except Exception:
                log.exception("bot %s: a received message could not be queued",
                              self.account.jid)

    async def _hand_on(self, xml: Any, delay: str | None, archive_id: str | None) -> None:
        """Read one message (``archive_id``: its id in the account's archive, when it
        comes from there) and hand it on, unless it is skipped."""
        archived = archive_id is not None
        read = bot_stanzas.read_message(xml, self.account.jid, self.rooms.known(),
                                        mentions_only=self.account.mentions_only,
                                        delay=delay, archived=archived)
        encrypted = read.skipped == "encrypted"
        if encrypted and self._omemo is not None:
            try:
                body = await self._decrypt(xml, archive_id or bot_stanzas.stanza_id_by(
                    xml, self.account.jid))
            except Undecryptable as exc:
                log.warning("bot %s: an OMEMO message from %r could not be decrypted: %r",
                            self.account.jid, jids.bare_of(xml.get("from") or "?"),
                            str(exc)[:300])
                self._skip("undecryptable")
                return
            if body is None:
                return  # an empty OMEMO message (the library's own), or one read already
            read = bot_stanzas.read_message(
                xml, self.account.jid, self.rooms.known(), body=body, delay=delay,
                mentions_only=self.account.mentions_only, archived=archived)
            if read.incoming is not None:
                read = replace(read, incoming=replace(read.incoming, encrypted=True))
        if read.skipped == "encrypted":
            self._skip("encrypted")
        if read.incoming is not None and archive_id is not None:
            read = replace(read, incoming=replace(read.incoming, id=archive_id),
                           archive_id=archive_id, stanza_id=archive_id)
        if read.incoming is not None:
            await self._deliver(read.incoming, read.archive_id, read.stanza_id)

    def _skip(self, reason: str) -> None:
        if self._skipped is not None:
            self._skipped(reason)

    async def _decrypt(self, xml: Any, stanza_id: str | None) -> str | None:
        """The body of the OMEMO message ``xml`` (``Decryptor.decrypt``), decrypted on
        the current stream (waiting for one, as a reply does)."""
        assert self._omemo is not None
        if self._client is None:
            await asyncio.wait_for(self.online.wait(), REPLY_WAIT)
        sender = xml.get("from") or ""
        bare, to = jids.bare_of(sender), self.account.jid
        if xml.get("type") == "groupchat":
            real = self.rooms.known().occupants.get(bare, {}).get(sender.partition("/")[2])
            if real is None:
                raise Undecryptable("the room does not reveal who sent it")
            bare, to = real, bare
        return await self._omemo.decrypt(xml, self._client, bare, to, stanza_id)

    async def _catch_up(self, client: Client, since: str) -> None:
        """Read the account's archive from ``read_from(since)`` (``since``: when this
        stream came online, less ``SINCE_MARGIN``), if it has one."""
        where = await self._read_from(since) if self._read_from else None
        if where is None or not await self._archive.archives(client):
            return
        async for result in self._archive.after(client, where.after, where.since):
            self._inbox.put_nowait((result.message, result.stamp, result.id))

    # replying -------------------------------------------------------------------------

    async def send_reply(self, message: Incoming, body: str, subject: str | None = None,
                         thread: str | None = None) -> None:
        """Reply to ``message``: to its sender, or in a room to the room, as a XEP-0461
        reply to it. Waits up to ``REPLY_WAIT`` for the session to be online."""
        await asyncio.wait_for(self.online.wait(), REPLY_WAIT)
        client = self._client
        if client is None:
            raise ConnectionError("the bot's session is not online")
        if message.encrypted:
            if self._omemo is None:
                raise OmemoUnavailable("this bot has no OMEMO device to encrypt its reply")
            client.send_raw((await self._omemo.reply(client, message, body, subject,
                                                     thread)).decode())
            return
        if message.type == "groupchat" and message.room:
            reply = client.make_message(mto=message.room, mbody=body, mtype="groupchat",
                                        msubject=subject)
            ET.SubElement(reply.xml, f"{{{bot_stanzas.REPLY_NS}}}reply",
                          {"to": message.sender, "id": message.id})
        else:
            reply = client.make_message(mto=message.sender, mbody=body,
                                        mtype=message.type, msubject=subject)
        if thread or message.thread:
            reply["thread"] = thread or message.thread
        reply.send()
