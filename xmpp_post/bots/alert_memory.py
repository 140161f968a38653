"""Which message carried which alert group: what the alert actions look up when someone
answers one.

``Remember`` is told of each templated message the XMPP server took (a
``http.context.SENT_WATCHERS`` entry). When the sender is a bot's account with
``alertmanager_url`` and the template is the built-in ``alertmanager`` or ``grafana``, it
keeps the group's ``commonLabels`` (what every alert of the group shares: a silence
matching them silences the group, and nothing else), the JIDs and rooms the notification
went to, its first line and the time, for ``TTL`` (7 days). ``AlertMemory`` reads them
back: by the id of a message sent (an XEP-0461 reply names it), or by that message's
first line (a client that replies by quoting). It also keeps the id of the silence the
actions made for a group, so that ``unsilence`` expires exactly that one.

All of it lives in the instance's lasting key-value store (``state.lasting``: the state
directory), namespace ``alerts``, under keys made of a digest of the account and what
is looked up (a JID or a line of any length makes a key of fixed size):

* ``m:<digest>``: the alert a message id carried (JSON: ``SentAlert``);
* ``q:<digest>``: the id of the latest message with that first line;
* ``s:<digest>``: the silence made for those labels;
* ``r:<digest>``: a JID or room alerts were sent to (who may list ``alerts``).

Sizes are bounded before anything is stored: a group with more labels than
``MAX_LABELS`` (or longer ones) is not remembered at all, since a silence on some of its
labels would silence more than that group.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from xmpp_post import jids
from xmpp_post.http.context import SentWatcher, TemplatedSent
from xmpp_post.state.lasting import KeyValue

log = logging.getLogger(__name__)

NAMESPACE = "alerts"
TTL = 7 * 86400.0  # seconds an alert's message can be answered
ALERT_TEMPLATES = ("alertmanager", "grafana")  # the built-ins whose payload has commonLabels
MAX_LABELS = 64
MAX_LABEL_NAME = 128
MAX_LABEL_VALUE = 1024
MAX_JIDS = 100  # recipients (and rooms) kept per alert
MAX_LINE = 1024  # characters of a first line compared
MAX_QUOTES = 3  # quoted lines tried, the first ones
STYLE = frozenset("*_~`")  # XEP-0393 markers, which clients may drop when quoting

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SentAlert:
    """An alert group a message carried: its labels (sorted), the bare JIDs and rooms
    the notification went to, its first line as sent, and when (Unix seconds)."""

    labels: Labels
    recipients: tuple[str, ...]
    rooms: tuple[str, ...]
    first_line: str
    time: float

    def dumps(self) -> bytes:
        return json.dumps({"labels": dict(self.labels), "recipients": self.recipients,
                           "rooms": self.rooms, "first_line": self.first_line,
                           "time": self.time}, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, data: bytes) -> SentAlert | None:
        """The alert, or None for a record this version cannot read."""
        try:
            raw = json.loads(data)
            labels = checked_labels(raw["labels"])
            if labels is None:
                return None
            return cls(labels, tuple(str(j) for j in raw["recipients"][:MAX_JIDS]),
                       tuple(str(r) for r in raw["rooms"][:MAX_JIDS]),
                       str(raw["first_line"])[:MAX_LINE], float(raw["time"]))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        """``alertname=DiskFull, instance=db-1``: the labels, alert name first."""
        ordered = sorted(self.labels, key=lambda pair: (pair[0] != "alertname", pair[0]))
        return ", ".join(f"{name}={value}" for name, value in ordered)


def checked_labels(labels: Any) -> Labels | None:
    """The labels, sorted, when they are a non-empty mapping of strings within the
    bounds; None otherwise (nothing a silence could safely match)."""
    if not isinstance(labels, dict) or not 0 < len(labels) <= MAX_LABELS:
        return None
    pairs = []
    for name, value in labels.items():
        if not (isinstance(name, str) and isinstance(value, str)
                and 0 < len(name) <= MAX_LABEL_NAME and len(value) <= MAX_LABEL_VALUE):
            return None
        pairs.append((name, value))
    return tuple(sorted(pairs))


def first_line(text: str) -> str:
    """The first non-blank line of ``text`` (bounded), stripped."""
    for line in text[:MAX_LINE * 4].splitlines():
        if line.strip():
            return line.strip()[:MAX_LINE]
    return ""


def canonical(line: str) -> str:
    """What two renderings of one line share: no styling markers, spaces collapsed,
    case folded (a client may quote ``*[FIRING:1]* X`` as ``[FIRING:1] X``)."""
    plain = "".join(char for char in line[:MAX_LINE] if char not in STYLE)
    return " ".join(plain.split()).casefold()


def quoted_lines(body: str) -> list[str]:
    """The first ``MAX_QUOTES`` quoted lines of ``body`` (``> text``), without ``>``."""
    found = []
    for line in body[:MAX_LINE * 8].splitlines():
        stripped = line.lstrip()
        if stripped.startswith(">"):
            text = stripped.lstrip("> \t")
            if text:
                found.append(text)
                if len(found) == MAX_QUOTES:
                    break
    return found


def _key(kind: str, account: str, what: str) -> str:
    digest = hashlib.sha256(f"{account.lower()}\0{what}".encode()).hexdigest()[:40]
    return f"{kind}:{digest}"


def _labels_key(labels: Labels) -> str:
    return json.dumps(labels, separators=(",", ":"))


class AlertMemory:
    """The alerts an account's messages carried, and the silences made for them."""

    def __init__(self, store: KeyValue, *, ttl: float = TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock

    async def remember(self, account: str, message_ids: Collection[str],
                       alert: SentAlert) -> None:
        data = alert.dumps()
        for message_id in message_ids:
            await self.store.put(NAMESPACE, _key("m", account, message_id), data, ttl=self.ttl)
        line = canonical(alert.first_line)
        first = next(iter(message_ids), None)  # any of them leads to the alert
        if line and first is not None:
            await self.store.put(NAMESPACE, _key("q", account, line), first.encode(),
                                 ttl=self.ttl)
        for jid in (*alert.recipients, *alert.rooms):
            await self.store.put(NAMESPACE, _key("r", account, jid.lower()), b"1",
                                 ttl=self.ttl)

    async def by_message(self, account: str, message_id: str) -> SentAlert | None:
        data = await self.store.get(NAMESPACE, _key("m", account, message_id))
        return None if data is None else SentAlert.loads(data)

    async def by_quote(self, account: str, quotes: list[str]) -> SentAlert | None:
        """The latest alert whose first line one of ``quotes`` is."""
        for quote in quotes:
            found = await self.store.get(NAMESPACE, _key("q", account, canonical(quote)))
            if found is not None:
                alert = await self.by_message(account, found.decode(errors="replace"))
                if alert is not None:
                    return alert
        return None

    async def was_sent_to(self, account: str, jid: str) -> bool:
        """Whether an alert went to ``jid`` (a bare JID or a room) in the last ``ttl``."""
        return await self.store.get(NAMESPACE, _key("r", account, jid.lower())) is not None

    async def silence_of(self, account: str, labels: Labels) -> str | None:
        found = await self.store.get(NAMESPACE, _key("s", account, _labels_key(labels)))
        return None if found is None else found.decode(errors="replace")

    async def keep_silence(self, account: str, labels: Labels, silence_id: str,
                           ttl: float) -> None:
        await self.store.put(NAMESPACE, _key("s", account, _labels_key(labels)),
                             silence_id.encode(), ttl=max(ttl, self.ttl))

    async def forget_silence(self, account: str, labels: Labels) -> None:
        await self.store.delete(NAMESPACE, _key("s", account, _labels_key(labels)))


class Remember:
    """The ``SENT_WATCHERS`` entry that remembers alert groups sent by ``accounts`` (a
    collection of bare JIDs, or a predicate: the accounts of bots with
    ``alertmanager_url``)."""

    def __init__(self, memory: AlertMemory,
                 accounts: Collection[str] | Callable[[str], bool]) -> None:
        self.memory = memory
        if callable(accounts):
            self._watched: Callable[[str], bool] = accounts
        else:
            watched = frozenset(jid.lower() for jid in accounts)
            self._watched = lambda jid: jid.lower() in watched

    async def __call__(self, sent: TemplatedSent) -> None:
        """Remember ``sent`` if it is an alert group of a watched account; a failure to
        store is logged, never raised (the message is sent already)."""
        alert = self.alert_of(sent)
        if alert is None:
            return
        try:
            await self.memory.remember(sent.sender, [r.id for r in sent.receipts], alert)
        except Exception:
            log.exception("could not remember the alert sent by %s", sent.sender)

    def alert_of(self, sent: TemplatedSent) -> SentAlert | None:
        if not (sent.builtin and sent.template in ALERT_TEMPLATES
                and self._watched(sent.sender)):
            return None
        payload = sent.payload
        labels = checked_labels(payload.get("commonLabels")
                                if isinstance(payload, dict) else None)
        if labels is None:
            return None
        rooms = sorted({jids.bare_of(r.to).lower() for r in sent.receipts
                        if r.type == "groupchat"})
        people = sorted({jids.bare_of(r.to).lower() for r in sent.receipts
                         if r.type != "groupchat"})
        return SentAlert(labels, tuple(people[:MAX_JIDS]), tuple(rooms[:MAX_JIDS]),
                         first_line(sent.body), self.memory.clock())


def remember_alerts(watchers: list[SentWatcher], store: KeyValue,
                    accounts: Collection[str] | Callable[[str], bool]) -> AlertMemory | None:
    """Wiring for ``service``: remember the alerts ``accounts`` send (the accounts of
    bots with ``alertmanager_url``) in ``store``, by adding a ``Remember`` to
    ``watchers`` (the application's ``SENT_WATCHERS``). Nothing is added, and None is
    returned, for an empty collection."""
    if not callable(accounts) and not accounts:
        return None
    memory = AlertMemory(store)
    watchers.append(Remember(memory, accounts))
    return memory
