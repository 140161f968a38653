"""OMEMO without the extra ``oldmemo`` (docs/omemo.md, "Licences"): the default install
has no ``oldmemo`` (AGPL-3.0). ``omemo_backends`` is the one place that knows; these
tests make it report OMEMO 0.3 missing (``without_0_3``), or hide the package from a
fresh interpreter, and check that the gateway manages only OMEMO 2, says why a 0.3-only
recipient cannot be reached, and still imports, starts and prints fingerprints."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, ClassVar

import oldmemo.etree
import pytest
from omemo.session_manager import NoEligibleDevices
from slixmpp.xmlstream import ET

from xmpp_post.errors import OmemoUnavailable
from xmpp_post.state.memory_lasting import memory_lasting
from xmpp_post.state.sealed import SealedKeyValue
from xmpp_post.xmpp import omemo_backends
from xmpp_post.xmpp.omemo_backends import OLDMEMO, TWOMEMO
from xmpp_post.xmpp.omemo_devices import OmemoDevices
from xmpp_post.xmpp.omemo_manager import _device_list_xml, _parse_device_list, old_device_list
from xmpp_post.xmpp.omemo_pep import PUBSUB_NS

BOB = "bob@example.org"


@pytest.fixture
def without_0_3(monkeypatch: pytest.MonkeyPatch) -> None:
    """This install as if ``pip install xmpp-post`` without the extra."""
    monkeypatch.setattr(omemo_backends, "oldmemo_module", None)


class FakeManager:
    """What ``OmemoDevices`` asks of python-omemo's session manager, recorded."""

    made_with: ClassVar[list[str]] = []
    refreshed: ClassVar[list[str]] = []
    asked: ClassVar[list[tuple[list[str], list[str]]]] = []
    known: ClassVar[tuple[Any, ...]] = ()  # the recipient's devices, as the library knows them

    @classmethod
    async def create(cls, backends: list[Any], *_args: Any, **_options: Any) -> FakeManager:
        cls.made_with = [backend.namespace for backend in backends]
        return cls()

    async def after_history_sync(self) -> None:
        pass

    async def get_own_device_information(self) -> tuple[Any, Any]:
        return SimpleNamespace(device_id=7, identity_key=b"k" * 32), ()

    @staticmethod
    def format_identity_key(_key: bytes) -> list[str]:
        return ["00112233"]

    async def get_device_information(self, _jid: str) -> tuple[Any, ...]:
        return self.known

    async def refresh_device_list(self, namespace: str, _jid: str) -> None:
        self.refreshed.append(namespace)

    async def encrypt(self, recipients: frozenset[str], plaintexts: dict[str, bytes],
                      backend_priority_order: list[str]) -> Any:
        self.asked.append((list(plaintexts), backend_priority_order))
        raise NoEligibleDevices(recipients)


class PepClient:
    """A stream whose PEP answers hold ``bob``'s OMEMO 0.3 device list."""

    def __init__(self, old_devices: list[int]) -> None:
        listed = ET.Element(f"{{{OLDMEMO}}}list")
        for device_id in old_devices:
            ET.SubElement(listed, f"{{{OLDMEMO}}}device", {"id": str(device_id)})
        self.listed = listed
        self.nodes: list[str] = []

    def make_iq_get(self, ito: str) -> Any:
        client = self

        class Iq:
            def append(self, pubsub: ET.Element) -> None:
                node = pubsub.find(f"{{{PUBSUB_NS}}}items")
                assert node is not None
                client.nodes.append(node.get("node", ""))

            async def send(self, timeout: float) -> Any:
                reply = ET.Element("{jabber:client}iq")
                items = ET.SubElement(ET.SubElement(reply, f"{{{PUBSUB_NS}}}pubsub"),
                                      f"{{{PUBSUB_NS}}}items")
                ET.SubElement(items, f"{{{PUBSUB_NS}}}item", {"id": "current"}).append(
                    client.listed)
                return SimpleNamespace(xml=reply)

        return Iq()


def devices() -> OmemoDevices:
    FakeManager.made_with, FakeManager.refreshed, FakeManager.asked = [], [], []
    FakeManager.known = ()
    store = SealedKeyValue(memory_lasting().kv, b"s" * 48, "omemo")
    return OmemoDevices(store, managers=lambda _link: FakeManager)  # type: ignore[arg-type,return-value]


def test_with_the_extra_both_versions_are_spoken_the_newest_first() -> None:
    assert omemo_backends.has_0_3()
    assert omemo_backends.namespaces() == [TWOMEMO, OLDMEMO]
    assert "OMEMO 0.3" in omemo_backends.describe()


@pytest.mark.usefixtures("without_0_3")
def test_without_the_extra_only_omemo_2_is_spoken() -> None:
    assert not omemo_backends.has_0_3()
    assert omemo_backends.namespaces() == [TWOMEMO]
    assert omemo_backends.module(OLDMEMO) is None
    assert [backend.namespace for backend in omemo_backends.backends(object())] == [TWOMEMO]


@pytest.mark.usefixtures("without_0_3")
async def test_without_the_extra_a_0_3_only_recipient_is_422_saying_why(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="xmpp_post.xmpp.omemo_backends"):
        gateway = devices()
    said = [record.getMessage() for record in caplog.records]
    assert said == ["OMEMO versions available: OMEMO 2 (urn:xmpp:omemo:2); not OMEMO 0.3, "
                    "which Conversations, Dino and Gajim speak "
                    "(pip install 'xmpp-post[oldmemo]' adds it)"]
    client = PepClient(old_devices=[1234, 5678])
    with pytest.raises(OmemoUnavailable) as refused:
        await gateway.encrypt("alice@example.org", client, BOB, "db1 /var at 91%")
    assert FakeManager.made_with == [TWOMEMO]  # the device is an OMEMO 2 device only
    assert set(FakeManager.refreshed) == {TWOMEMO}
    assert FakeManager.asked == [([TWOMEMO], [TWOMEMO])]
    assert client.nodes == ["eu.siacs.conversations.axolotl.devicelist"]
    assert refused.value.code == "omemo_unavailable"  # 422 at the HTTP edge
    message = str(refused.value)
    assert BOB in message and "only OMEMO 0.3" in message
    assert "lacks OMEMO 0.3 support" in message and "xmpp-post[oldmemo]" in message
    assert "db1" not in message


@pytest.mark.usefixtures("without_0_3")
async def test_without_the_extra_a_recipient_with_no_device_at_all_is_told_so() -> None:
    with pytest.raises(OmemoUnavailable) as refused:
        await devices().encrypt("alice@example.org", PepClient(old_devices=[]), BOB, "x")
    assert "has no OMEMO device" in str(refused.value)
    assert "0.3" not in str(refused.value)


@pytest.mark.usefixtures("without_0_3")
async def test_without_the_extra_a_recipient_with_an_unusable_omemo_2_device_is_not_blamed_on_0_3(
        ) -> None:
    gateway = devices()
    FakeManager.known = (SimpleNamespace(namespaces=frozenset({TWOMEMO, OLDMEMO}),
                                         active=frozenset({(TWOMEMO, True)})),)
    with pytest.raises(OmemoUnavailable) as refused:
        await gateway.encrypt("alice@example.org", PepClient(old_devices=[3]), BOB, "x")
    assert "0.3" not in str(refused.value)


@pytest.mark.usefixtures("without_0_3")
async def test_without_the_extra_a_room_without_omemo_2_devices_says_why() -> None:
    with pytest.raises(OmemoUnavailable) as refused:
        await devices().encrypt_room("alice@example.org", PepClient([1]), "ops@rooms.example.org",
                                     [BOB], "x")
    assert "lacks OMEMO 0.3 support" in str(refused.value)
    assert "xmpp-post[oldmemo]" in str(refused.value)


def test_the_0_3_device_list_is_read_as_oldmemo_reads_it() -> None:
    listed = ET.Element(f"{{{OLDMEMO}}}list")
    for device_id in (1, 42, 2**31 - 1):
        ET.SubElement(listed, f"{{{OLDMEMO}}}device", {"id": str(device_id)})
    assert old_device_list(listed) == oldmemo.etree.parse_device_list(listed)
    with pytest.raises(ValueError):
        old_device_list(ET.Element(f"{{{TWOMEMO}}}devices"))


@pytest.mark.usefixtures("without_0_3")
def test_without_the_extra_our_0_3_list_can_still_be_withdrawn_from() -> None:
    # A device made with the extra and started without: the library withdraws it from
    # the 0.3 list, read and written without oldmemo.
    written = _device_list_xml(OLDMEMO, {5: None, 9: None})
    assert oldmemo.etree.parse_device_list(written) == {5: None, 9: None}
    assert _parse_device_list(OLDMEMO, written) == {5: None, 9: None}
