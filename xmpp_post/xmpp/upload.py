"""XEP-0363 HTTP File Upload on a client stream: finding the sender's upload service and
asking it for a slot. The HTTPS PUT into the slot is not done here (the XMPP side knows
no HTTP library): the relay hands the slot to its ``files.Uploader``.

* The service of a domain is found once and cached for every session of the gateway
  (``UploadServices``, like ``directory.ServiceDirectory``): disco#info of the domain
  itself, else of its disco#items (at most ``MAX_ITEMS``), the first that has the
  feature ``urn:xmpp:http:upload:0``; its XEP-0128 form gives ``max-file-size``. A
  domain without one is remembered too; a question that was not answered is not.
* No slixmpp plugin is loaded for this (slixmpp's ``xep_0363`` would pull in the
  service discovery and data form plugins in every pooled session, and do its PUT with
  a client of its own): a few IQs, built and read here, and nothing kept per session.
* The service's refusal keeps its condition (``UploadRefused``): ``<file-too-large/>``
  is 413 ``file_too_large``; a ``<retry stamp/>`` is ``UploadQuota``, with the seconds
  until then as ``retry_after``; ``resource-constraint`` without one is a quota with the
  gateway's own ``retry_after``. A slot must be https for both URLs; of the headers the
  service asks for, only those XEP-0363 allows are kept (``Authorization``, ``Cookie``,
  ``Expires``), and none with a line break.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET

from xmpp_post.errors import (
    FileTooLarge,
    GatewayError,
    UploadFailed,
    UploadQuota,
    UploadRefused,
    UploadUnavailable,
    XmppUnavailable,
)
from xmpp_post.files import FileToSend, UploadSlot, is_https_url
from xmpp_post.locks import KeyedLocks

UPLOAD_NS = "urn:xmpp:http:upload:0"
DISCO_INFO_NS = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS_NS = "http://jabber.org/protocol/disco#items"
DATA_NS = "jabber:x:data"
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
MAX_ITEMS = 20  # disco#items of a domain asked about, at most
ALLOWED_HEADERS = {"authorization": "Authorization", "cookie": "Cookie", "expires": "Expires"}
MAX_RETRY_AFTER = 7 * 86400
MAX_TEXT = 200  # of the server's text, kept in the answer
SERVICE_TTL = 600.0


@dataclass(frozen=True)
class UploadService:
    """A domain's upload service: its JID, and the largest file it takes (None: it
    does not say)."""

    jid: str
    max_size: int | None = None


class UploadServices:
    """The upload service of each domain, found once for every session (see the
    module docstring); at most ``max_entries`` domains, least recently asked first out."""

    def __init__(self, max_entries: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._known: OrderedDict[str, tuple[UploadService | None, float]] = OrderedDict()
        self._locks = KeyedLocks()
        self._clock = clock
        self.max_entries = max_entries

    def known(self, domain: str) -> UploadService | None:
        """The service found for ``domain`` if one is cached (no question asked)."""
        entry = self._known.get(domain)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    def _cached(self, domain: str) -> tuple[UploadService | None] | None:
        entry = self._known.get(domain)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._known[domain]
            return None
        self._known.move_to_end(domain)
        return (entry[0],)

    async def service_for(self, domain: str,
                          ask: Callable[[str], Awaitable[UploadService | None]],
                          ) -> UploadService | None:
        """The cached answer, or ``ask(domain)``'s (one question per domain at a time);
        None: the domain has no upload service."""
        cached = self._cached(domain)
        if cached is not None:
            return cached[0]
        async with self._locks.hold(domain):
            cached = self._cached(domain)
            if cached is not None:
                return cached[0]
            found = await ask(domain)
            self._known[domain] = (found, self._clock() + SERVICE_TTL)
            while len(self._known) > self.max_entries:
                self._known.popitem(last=False)
            return found


async def slot_for(client: Any, domain: str, file: FileToSend, services: UploadServices,
                   timeout: float, retry_after: int) -> UploadSlot:
    """A slot for ``file`` from the upload service of ``domain`` (the sender's)."""

    async def ask(asked: str) -> UploadService | None:
        return await discover(client, asked, timeout, retry_after)

    service = await services.service_for(domain, ask)
    if service is None:
        raise UploadUnavailable(f"the XMPP server of {domain} offers no file upload "
                                "(XEP-0363 HTTP File Upload)")
    return await request_slot(client, service, file, timeout, retry_after)


# discovery ------------------------------------------------------------------------------


async def discover(client: Any, domain: str, timeout: float,
                   retry_after: int) -> UploadService | None:
    """The upload service of ``domain``, asked on ``client``'s stream; None if it has
    none. Raises ``XmppUnavailable`` (``upload_unavailable``) when the server does not
    answer in time."""
    try:
        info = await _query(client, domain, DISCO_INFO_NS, timeout)
        found = service_in(domain, info)
        if found is not None:
            return found
        try:
            items = await _query(client, domain, DISCO_ITEMS_NS, timeout)
        except IqError:
            return None
        jids = [item.get("jid", "") for item in items.findall(f"{{{DISCO_ITEMS_NS}}}item")
                if item.get("jid") and not item.get("node")][:MAX_ITEMS]
        answers = await asyncio.gather(*(_query(client, jid, DISCO_INFO_NS, timeout)
                                          for jid in jids), return_exceptions=True)
    except IqTimeout:
        raise XmppUnavailable(f"the XMPP server of {domain} did not say in time whether it "
                              "has an upload service", code="upload_unavailable",
                              retry_after=retry_after) from None
    except IqError:
        return None
    for jid, answer in zip(jids, answers, strict=True):
        if isinstance(answer, IqTimeout):
            raise XmppUnavailable(f"the upload service {jid} did not answer in time",
                                  code="upload_unavailable", retry_after=retry_after)
        if isinstance(answer, BaseException):
            continue
        found = service_in(jid, answer)
        if found is not None:
            return found
    return None


async def _query(client: Any, jid: str, namespace: str, timeout: float) -> Any:
    """The ``<query/>`` of ``namespace`` that ``jid`` answers (an empty one if none)."""
    iq = client.make_iq_get(ito=jid)
    iq.append(ET.Element(f"{{{namespace}}}query"))
    reply = await iq.send(timeout=timeout)
    query = reply.xml.find(f"{{{namespace}}}query")
    return query if query is not None else ET.Element(f"{{{namespace}}}query")


def service_in(jid: str, info: Any) -> UploadService | None:
    """``jid``'s upload service, if its disco#info ``<query/>`` says it is one."""
    features = {feature.get("var") for feature in info.findall(f"{{{DISCO_INFO_NS}}}feature")}
    if UPLOAD_NS not in features:
        return None
    for form in info.findall(f"{{{DATA_NS}}}x"):
        values = {field.get("var"): field.findtext(f"{{{DATA_NS}}}value", "")
                  for field in form.findall(f"{{{DATA_NS}}}field")}
        if values.get("FORM_TYPE") == UPLOAD_NS:
            size = values.get("max-file-size", "").strip()
            return UploadService(jid, int(size) if size.isdigit() else None)
    return UploadService(jid)


# the slot -------------------------------------------------------------------------------


async def request_slot(client: Any, service: UploadService, file: FileToSend,
                       timeout: float, retry_after: int) -> UploadSlot:
    """Ask ``service`` for a slot for ``file``; raise what the refusal means."""
    if service.max_size is not None and file.size > service.max_size:
        raise FileTooLarge(f"the file {file.name!r} is {file.size} bytes; the sender's "
                           f"server takes files of at most {service.max_size}")
    iq = client.make_iq_get(ito=service.jid)
    iq.append(ET.Element(f"{{{UPLOAD_NS}}}request", {
        "filename": file.name, "size": str(file.size), "content-type": file.content_type}))
    try:
        reply = await iq.send(timeout=timeout)
    except IqTimeout:
        raise UploadFailed(f"the upload service {service.jid} did not answer the slot "
                           "request in time", retry_after=retry_after) from None
    except IqError as exc:
        raise slot_refused(exc.iq.xml, file, retry_after, time.time()) from None
    return slot_in(reply.xml)


def slot_in(iq: Any) -> UploadSlot:
    """The slot an ``<iq type='result'/>`` gives; ``UploadFailed`` if it is unusable."""
    slot = iq.find(f"{{{UPLOAD_NS}}}slot")
    put = slot.find(f"{{{UPLOAD_NS}}}put") if slot is not None else None
    get = slot.find(f"{{{UPLOAD_NS}}}get") if slot is not None else None
    if put is None or get is None:
        raise UploadFailed("the upload service's answer has no slot")
    put_url, get_url = put.get("url", ""), get.get("url", "")
    if not is_https_url(put_url) or not is_https_url(get_url):
        raise UploadFailed("the upload service's slot is not an https URL")
    headers: list[tuple[str, str]] = []
    for header in put.findall(f"{{{UPLOAD_NS}}}header"):
        name = ALLOWED_HEADERS.get(header.get("name", "").lower())
        value = (header.text or "").strip()
        if name is not None and "\n" not in value and "\r" not in value:
            headers.append((name, value))
    return UploadSlot(put_url=put_url, get_url=get_url, headers=tuple(headers))


def slot_refused(iq: Any, file: FileToSend, retry_after: int, now: float) -> GatewayError:
    """The error an ``<iq type='error'/>`` answering a slot request means."""
    error = iq.find("{jabber:client}error")
    if error is None:
        error = iq.find("error")
    condition, text, too_large, retry = "", "", None, None
    for child in error if error is not None else ():
        if child.tag == f"{{{STANZAS_NS}}}text":
            text = (child.text or "").strip()[:MAX_TEXT]
        elif child.tag.startswith(f"{{{STANZAS_NS}}}"):
            condition = child.tag.partition("}")[2]
        elif child.tag == f"{{{UPLOAD_NS}}}file-too-large":
            too_large = child.findtext(f"{{{UPLOAD_NS}}}max-file-size", "").strip()
        elif child.tag == f"{{{UPLOAD_NS}}}retry":
            retry = child.get("stamp", "")
    said = f" ({condition}: {text})" if text else f" ({condition})" if condition else ""
    if too_large is not None:
        limit = f"; it takes at most {too_large} bytes" if too_large.isdigit() else ""
        return FileTooLarge(f"the sender's server refused the file {file.name!r} of "
                            f"{file.size} bytes as too large{limit}")
    wait = seconds_until(retry, now) if retry else None
    if wait is not None:
        return UploadQuota(f"the sender's server refused an upload for now{said}; retry "
                           f"in {wait} s", condition=condition, text=text, retry_after=wait)
    if condition == "resource-constraint":
        return UploadRefused(f"the sender's server refused an upload for now (a quota?)"
                             f"{said}", code="upload_quota", condition=condition, text=text,
                             retry_after=retry_after)
    return UploadRefused(f"the sender's server refused an upload slot for "
                         f"{file.name!r}{said}", condition=condition, text=text)


def seconds_until(stamp: str, now: float) -> int | None:
    """Whole seconds from ``now`` to an XEP-0082 date and time (at least 1, at most a
    week); None if ``stamp`` is not one."""
    try:
        when = datetime.fromisoformat(stamp.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(1, min(MAX_RETRY_AFTER, math.ceil(when.timestamp() - now)))
