"""XEP-0363 on the XMPP side, with the stream faked by canned answers: finding a domain's
upload service (cached for every session), reading its slot, and what its refusals
mean. The real server's answers are proven in test_files_e2e.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

import pytest
from slixmpp import Iq
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET

from xmpp_post.errors import (
    FileTooLarge,
    UploadFailed,
    UploadQuota,
    UploadRefused,
    UploadUnavailable,
    XmppUnavailable,
)
from xmpp_post.files import FileToSend
from xmpp_post.http.render import headers_of, status_of
from xmpp_post.testing import ManualClock
from xmpp_post.xmpp.upload import (
    SERVICE_TTL,
    UploadService,
    UploadServices,
    discover,
    request_slot,
    seconds_until,
    slot_for,
)

NS = "urn:xmpp:http:upload:0"
FILE = FileToSend(Path("/nonexistent"), "report.pdf", 5000, "application/pdf")
INFO = "http://jabber.org/protocol/disco#info"
ITEMS = "http://jabber.org/protocol/disco#items"


def iq(inner: str, kind: str = "result") -> Iq:
    return Iq(xml=ET.fromstring(f'<iq xmlns="jabber:client" type="{kind}" id="1">{inner}</iq>'))


def info(*features: str, max_size: str | None = None) -> Iq:
    form = ""
    if max_size is not None:
        form = (f'<x xmlns="jabber:x:data" type="result"><field var="FORM_TYPE" '
                f'type="hidden"><value>{NS}</value></field><field var="max-file-size">'
                f"<value>{max_size}</value></field></x>")
    found = "".join(f'<feature var="{feature}"/>' for feature in features)
    return iq(f'<query xmlns="{INFO}"><identity category="store" type="file"/>{found}'
              f"{form}</query>")


def error(condition: str, kind: str = "modify", extra: str = "", text: str = "") -> IqError:
    said = (f'<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">{text}</text>'
            if text else "")
    return IqError(iq(f'<error type="{kind}"><{condition} '
                      f'xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>{said}{extra}</error>',
                      "error"))


# a reply, a failure, or a reply made from the question
Answer: TypeAlias = Iq | BaseException | Callable[[Any], Iq]


class FakeStream:
    """Answers each IQ from ``answers``, by (to, the child's tag); counts the questions."""

    def __init__(self, answers: dict[tuple[str, str], Answer]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str]] = []

    def make_iq_get(self, ito: str) -> _Question:
        return _Question(self, ito)


class _Question:
    def __init__(self, stream: FakeStream, to: str) -> None:
        self.stream, self.to, self.child = stream, to, ET.Element("none")

    def append(self, child: Any) -> None:
        self.child = child

    async def send(self, timeout: float) -> Iq:
        key = (self.to, self.child.tag.partition("}")[0][1:])
        self.stream.asked.append(key)
        await asyncio.sleep(0)
        answer = self.stream.answers.get(key, error("service-unavailable", "cancel"))
        if callable(answer) and not isinstance(answer, BaseException):
            answer = answer(self.child)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def items(*jids: str) -> Iq:
    listed = "".join(f'<item jid="{jid}"/>' for jid in jids)
    return iq(f'<query xmlns="{ITEMS}">{listed}</query>')


async def test_the_service_is_found_among_the_items_with_its_limit() -> None:
    stream = FakeStream({
        ("example.org", INFO): info("http://jabber.org/protocol/disco#info"),
        ("example.org", ITEMS): items("conference.example.org", "upload.example.org"),
        ("conference.example.org", INFO): info("http://jabber.org/protocol/muc"),
        ("upload.example.org", INFO): info(NS, max_size="1048576"),
    })
    assert await discover(stream, "example.org", 5, 5) == \
        UploadService("upload.example.org", 1048576)


async def test_the_domain_itself_may_be_the_service() -> None:
    stream = FakeStream({("example.org", INFO): info(NS)})
    assert await discover(stream, "example.org", 5, 5) == UploadService("example.org", None)
    assert stream.asked == [("example.org", INFO)]


async def test_no_service_and_no_answer() -> None:
    none = FakeStream({("example.org", INFO): info(), ("example.org", ITEMS): items()})
    assert await discover(none, "example.org", 5, 5) is None
    refusing = FakeStream({("example.org", INFO): info(),
                           ("example.org", ITEMS): error("feature-not-implemented")})
    assert await discover(refusing, "example.org", 5, 5) is None
    silent = FakeStream({("example.org", INFO): IqTimeout(iq(""))})
    with pytest.raises(XmppUnavailable) as raised:
        await discover(silent, "example.org", 5, 7)
    assert raised.value.code == "upload_unavailable" and raised.value.retry_after == 7
    assert status_of(raised.value) == 503


async def test_at_most_twenty_items_are_asked() -> None:
    many = [f"c{n}.example.org" for n in range(50)]
    stream = FakeStream({("example.org", INFO): info(), ("example.org", ITEMS): items(*many)})
    assert await discover(stream, "example.org", 5, 5) is None
    assert len(stream.asked) == 2 + 20


async def test_the_service_is_asked_once_per_domain_for_every_session() -> None:
    clock = ManualClock()
    services = UploadServices(clock=clock)
    asked: list[str] = []

    async def ask(domain: str) -> UploadService | None:
        asked.append(domain)
        await asyncio.sleep(0)
        return UploadService("upload." + domain, 10) if domain == "a.org" else None

    found = await asyncio.gather(*(services.service_for("a.org", ask) for _ in range(5)))
    assert set(found) == {UploadService("upload.a.org", 10)} and asked == ["a.org"]
    assert await services.service_for("b.org", ask) is None
    assert await services.service_for("b.org", ask) is None  # "none" is remembered too
    assert asked == ["a.org", "b.org"] and services.known("a.org") == found[0]
    clock.advance(SERVICE_TTL + 1)
    assert services.known("a.org") is None
    await services.service_for("a.org", ask)
    assert asked == ["a.org", "b.org", "a.org"]


async def test_a_domain_without_a_service_is_upload_unavailable() -> None:
    stream = FakeStream({("example.org", INFO): info(), ("example.org", ITEMS): items()})
    with pytest.raises(UploadUnavailable) as raised:
        await slot_for(stream, "example.org", FILE, UploadServices(), 5, 5)
    assert status_of(raised.value) == 501


def _slot(request: Any) -> Iq:
    assert request.get("filename") == "report.pdf" and request.get("size") == "5000"
    assert request.get("content-type") == "application/pdf"
    return iq(f'<slot xmlns="{NS}"><put url="https://u.example.org/p/report.pdf">'
              '<header name="Authorization">Bearer abc</header>'
              '<header name="Cookie">c=1</header><header name="Expires">x</header>'
              '<header name="X-Evil">no</header>'
              '<header name="authorization">two\nlines</header></put>'
              '<get url="https://u.example.org/g/report.pdf"/></slot>')


async def test_a_slot_keeps_only_the_headers_xep_0363_allows() -> None:
    stream = FakeStream({("u.example.org", NS): _slot})
    slot = await request_slot(stream, UploadService("u.example.org"), FILE, 5, 5)
    assert slot.put_url == "https://u.example.org/p/report.pdf"
    assert slot.get_url == "https://u.example.org/g/report.pdf"
    assert slot.headers == (("Authorization", "Bearer abc"), ("Cookie", "c=1"),
                            ("Expires", "x"))


async def test_a_slot_that_is_not_https_is_refused() -> None:
    plain = iq(f'<slot xmlns="{NS}"><put url="http://u.example.org/p"/>'
               '<get url="https://u.example.org/g"/></slot>')
    for answer in (plain, iq("")):
        stream = FakeStream({("u.example.org", NS): answer})
        with pytest.raises(UploadFailed):
            await request_slot(stream, UploadService("u.example.org"), FILE, 5, 5)


async def test_a_file_over_the_advertised_limit_is_not_asked_for() -> None:
    stream = FakeStream({})
    with pytest.raises(FileTooLarge) as raised:
        await request_slot(stream, UploadService("u.example.org", 4999), FILE, 5, 5)
    assert stream.asked == [] and status_of(raised.value) == 413
    assert "4999" in raised.value.message


async def refusal(answer: BaseException, now_offset: float = 0.0) -> Any:
    stream = FakeStream({("u.example.org", NS): answer})
    with pytest.raises((UploadRefused, FileTooLarge, UploadFailed)) as raised:
        await request_slot(stream, UploadService("u.example.org"), FILE, 5, 9)
    return raised.value


async def test_what_the_services_refusals_mean() -> None:
    too_large = await refusal(error("not-acceptable", extra=(
        f'<file-too-large xmlns="{NS}"><max-file-size>4000</max-file-size>'
        "</file-too-large>")))
    assert isinstance(too_large, FileTooLarge) and "at most 4000" in too_large.message
    later = await refusal(error("resource-constraint", "wait", text="Quota reached",
                                extra=f'<retry xmlns="{NS}" stamp="2099-01-01T00:00:00Z"/>'))
    assert isinstance(later, UploadQuota) and status_of(later) == 429
    assert headers_of(later)["Retry-After"] == str(7 * 86400)  # bounded to a week
    quota = await refusal(error("resource-constraint", "wait", text="Daily quota reached"))
    assert quota.code == "upload_quota" and status_of(quota) == 503
    assert quota.retry_after == 9 and "Daily quota reached" in quota.message
    for condition, status in (("forbidden", 403), ("not-allowed", 403),
                              ("not-acceptable", 415), ("bad-request", 400),
                              ("internal-server-error", 502)):
        refused = await refusal(error(condition))
        assert (refused.code, refused.condition) == ("upload_refused", condition)
        assert status_of(refused) == status
    slow = await refusal(IqTimeout(iq("")))
    assert isinstance(slow, UploadFailed) and status_of(slow) == 502


def test_a_retry_stamp_in_seconds() -> None:
    now = 1_700_000_000.0
    assert seconds_until("2023-11-14T22:13:50Z", now) == 30
    assert seconds_until("2023-11-14T22:13:10.5+00:00", now) == 1  # past: at least 1
    assert seconds_until("2023-11-14T22:14:50", now) is None  # no time zone
    assert seconds_until("tomorrow", now) is None
