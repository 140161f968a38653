"""Reading a bot account's archive (XEP-0313) after the last message it queued (or,
with several instances and none handled yet, from a time).

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
DATA_NS = "jabber:x:data"
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

    async def after(self, client: Any, after: str | None,
                    since: str | None = None) -> AsyncIterator[ArchiveResult]:
        """Every archived message after the archive id ``after``, or (without one)
        from the time ``since`` (ISO 8601), oldest first."""
        for _ in range(PAGES):
            queryid = secrets.token_hex(6)
            self._queries[queryid] = []
            iq = client.make_iq_set()
            query = ET.SubElement(iq.xml, f"{{{MAM_NS}}}query", {"queryid": queryid})
            if since is not None:
                form = ET.SubElement(query, f"{{{DATA_NS}}}x", {"type": "submit"})
                for var, value, kind in (("FORM_TYPE", MAM_NS, "hidden"),
                                         ("start", since, None)):
                    field = ET.SubElement(form, f"{{{DATA_NS}}}field",
                                          {"var": var, **({"type": kind} if kind else {})})
                    ET.SubElement(field, f"{{{DATA_NS}}}value").text = value
            rsm = ET.SubElement(query, f"{{{RSM_NS}}}set")
            ET.SubElement(rsm, f"{{{RSM_NS}}}max").text = str(PAGE)
            if after is not None:
                ET.SubElement(rsm, f"{{{RSM_NS}}}after").text = after
            try:
                answer = await iq.send(timeout=self.timeout * 3)
            except (IqError, IqTimeout) as exc:
                log.warning("bot %s: the archive could not be read after %s: %s",
                            self.own, after or since, exc)
                return
            finally:
                results = self._queries.pop(queryid, [])
            for result in results:
                yield result
            fin = answer.xml.find(f"{{{MAM_NS}}}fin")
            last = fin.find(f"{{{RSM_NS}}}set/{{{RSM_NS}}}last") if fin is not None else None
            if (not results or fin is None or fin.get("complete") == "true"
                    or last is None or not last.text):
                return
            after = last.text
