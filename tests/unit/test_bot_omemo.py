"""A bot's OMEMO, without a server: reading a decrypted OMEMO 2 envelope, what is
undecryptable, and a reply that cannot be encrypted (never sent in clear, counted)."""

from __future__ import annotations

import asyncio

import pytest
from slixmpp.xmlstream import ET

from tests.helpers.bots_core import MESSAGE, ScriptedHttp, answer, runner_for
from xmpp_post.errors import OmemoUnavailable
from xmpp_post.incoming import Incoming
from xmpp_post.metrics import Metrics
from xmpp_post.xmpp import omemo_backends
from xmpp_post.xmpp.bot_omemo import BotOmemo, Undecryptable, envelope_body
from xmpp_post.xmpp.omemo_devices import envelope

BOT, ALICE, ROOM = "bot@example.org", "alice@example.org", "ops@rooms.example.org"


def test_an_envelope_from_the_sender_to_the_bot_gives_its_body() -> None:
    made = envelope("disk <full> & é", ALICE, BOT).encode()
    assert envelope_body(made, ALICE, BOT, BOT) == "disk <full> & é"
    to_room = envelope("hi", ALICE, ROOM).encode()
    assert envelope_body(to_room, ALICE, ROOM, BOT) == "hi"


@pytest.mark.parametrize(("plaintext", "why"), [
    (envelope("x", "mallory@example.org", BOT).encode(), "another sender"),
    (envelope("x", ALICE, "carol@example.org").encode(), "not addressed"),
    (b"<envelope xmlns='urn:xmpp:sce:1'><content/></envelope>", "not addressed"),
    (b"<body>hello</body>", "not a XEP-0420 envelope"),
    (b"not xml <", "not XML"),
    (b"\xff\xfe", "not XML"),
    (b"<a>" + b"x" * 300_000 + b"</a>", "too big"),
])
def test_an_envelope_that_is_not_between_them_is_undecryptable(plaintext: bytes,
                                                                why: str) -> None:
    with pytest.raises(Undecryptable, match=why):
        envelope_body(plaintext, ALICE, BOT, BOT)


def test_an_envelope_without_a_body_has_nothing_to_deliver() -> None:
    plaintext = (b"<envelope xmlns='urn:xmpp:sce:1'><content/><to jid='bot@example.org'/>"
                 b"</envelope>")
    assert envelope_body(plaintext, ALICE, BOT, BOT) is None


class Manager:
    """The parts of the library's session manager a decryption reaches first."""

    async def get_own_device_information(self) -> tuple[object, object]:
        class Own:
            device_id = 7
        return Own(), frozenset()


class Device:
    def __init__(self) -> None:
        self.manager = Manager()
        self.lock = asyncio.Lock()


class Devices:
    async def device(self, _account: str, _client: object) -> Device:
        return Device()


async def decrypt(xml: str) -> str | None:
    omemo = BotOmemo(Devices(), BOT, None)  # type: ignore[arg-type]
    return await omemo.decrypt(ET.fromstring(xml), None, ALICE, BOT, "sid-1")


@pytest.mark.parametrize("xml", [
    "<message xmlns='jabber:client'><body>no OMEMO here</body></message>",
    "<message xmlns='jabber:client'><encrypted xmlns='urn:xmpp:omemo:2'/></message>",
    "<message xmlns='jabber:client'><encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'>"
    "<keys jid='alice@example.org'><key rid='5'>AAAA</key></keys></header>"
    "<payload>AAAA</payload></encrypted></message>",
])
async def test_what_is_missing_malformed_or_not_for_this_device_is_undecryptable(
        xml: str) -> None:
    with pytest.raises(Undecryptable):
        await decrypt(xml)


async def test_a_reply_that_cannot_be_encrypted_is_not_sent_and_is_counted() -> None:
    metrics = Metrics()
    runner, _link = runner_for(ScriptedHttp([answer(200, b"pong", "text/plain")]),
                               metrics=metrics)

    class Refusing:
        async def send_reply(self, message: Incoming, body: str, subject: str | None = None,
                             thread: str | None = None) -> None:
            raise OmemoUnavailable(f"{message.sender} has no OMEMO device")

    runner.link = Refusing()
    await runner.accept(MESSAGE, "sid-1")
    [item] = await runner._queues.peek(runner.queue, 1)
    assert await runner.handle(item) == "delivered"
    assert metrics.bot_replies_failed.labels("b", "omemo")._value.get() == 1
    assert metrics.bot_replies_failed.labels("b", "xmpp")._value.get() == 0


async def test_omemo_0_3_without_its_backend_is_undecryptable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(omemo_backends, "oldmemo_module", None)
    with pytest.raises(Undecryptable, match=r"OMEMO 0\.3 .* is not installed"):
        await decrypt("<message xmlns='jabber:client'><encrypted "
                      "xmlns='eu.siacs.conversations.axolotl'><header sid='1'/>"
                      "</encrypted></message>")
