"""Reading a bot account's archive (XEP-0313) after the last message it queued, and
the id of its newest message (where several instances start from).

``ArchiveReader`` sends the queries, page by page (RSM ``after``), and collects the
results the server streams before each query's answer: the session's message handler
hands every ``<message/>`` carrying a result to ``offer`` first. Results from anyone but
the account itself are forgeries and never collected (``bot_stanzas.archive_result``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET

from xmpp_post.xmpp.bot_stanzas import MAM_NS, ArchiveResult, archive_result

log = logging.getLogger(__name__)

RSM_NS = "http://jabber.org/protocol/rsm"
DISCO_INFO_NS = "http://jabber.org/protocol/disco#info"
PAGE = 50
PAGES = 200  # at most 10,000 archived messages read after a restart


class ArchiveReader:
    def __init__(self, own: str, timeout: float) -> None:
        self.own = own
        self.timeout = timeout
        self._queries: dict[str, list[ArchiveResult]] = {}

    def offer(self, xml: Any) -> bool:
        """Whether ``xml`` is an archive result (collected if it answers our query)."""
        result = archive_result(xml, self.own)
        if result is None:
            return False
        if result.queryid in self._queries:
            self._queries[result.queryid].append(result)
        return True

    async def archives(self, client: Any) -> bool:
        """Whether the account's server keeps its archive (disco#info)."""
        iq = client.make_iq_get(ito=self.own)
        iq.append(ET.Element(f"{{{DISCO_INFO_NS}}}query"))
        try:
            answer = await iq.send(timeout=self.timeout)
        except (IqError, IqTimeout):
            return False
        return any(f.get("var") == MAM_NS
                   for f in answer.xml.iter(f"{{{DISCO_INFO_NS}}}feature"))

    async def _query(self, client: Any, page: int, where: str,
                     value: str) -> tuple[Any, list[ArchiveResult]]:
        """One query (RSM ``where``: ``after`` or ``before``; no ``value``: from the
        archive's start, or its end): its answer and the results it brought."""
        queryid = secrets.token_hex(6)
        self._queries[queryid] = []
        iq = client.make_iq_set()
        query = ET.SubElement(iq.xml, f"{{{MAM_NS}}}query", {"queryid": queryid})
        rsm = ET.SubElement(query, f"{{{RSM_NS}}}set")
        ET.SubElement(rsm, f"{{{RSM_NS}}}max").text = str(page)
        if value or where == "before":
            ET.SubElement(rsm, f"{{{RSM_NS}}}{where}").text = value or None
        try:
            answer = await iq.send(timeout=self.timeout * 3)
        finally:
            results = self._queries.pop(queryid, [])
        return answer, results

    async def newest(self, client: Any) -> str | None:
        """The archive id of the account's newest archived message ("" when there is
        none), or None if the archive could not be read."""
        try:
            _answer, results = await self._query(client, 1, "before", "")
        except (IqError, IqTimeout) as exc:
            log.warning("bot %s: the archive's newest message could not be read: %s",
                        self.own, exc)
            return None
        return results[-1].id if results else ""

    async def after(self, client: Any, after: str) -> AsyncIterator[ArchiveResult]:
        """Every archived message after the archive id ``after`` (all of them for ""),
        oldest first."""
        for _ in range(PAGES):
            try:
                answer, results = await self._query(client, PAGE, "after", after)
            except (IqError, IqTimeout) as exc:
                log.warning("bot %s: the archive could not be read after %s: %s",
                            self.own, after, exc)
                return
            for result in results:
                yield result
            fin = answer.xml.find(f"{{{MAM_NS}}}fin")
            last = fin.find(f"{{{RSM_NS}}}set/{{{RSM_NS}}}last") if fin is not None else None
            if (not results or fin is None or fin.get("complete") == "true"
                    or last is None or not last.text):
                return
            after = last.text
