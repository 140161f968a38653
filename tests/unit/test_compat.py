"""``xmpp.compat``: the check of slixmpp's private API passes on the slixmpp installed,
and fails with a clear error, naming the name and the versions, when one is missing or
changed shape."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import slixmpp
from slixmpp import ClientXMPP
from slixmpp.features.feature_mechanisms.mechanisms import FeatureMechanisms
from slixmpp.plugins.xep_0198.stream_management import XEP_0198
from slixmpp.util.sasl.mechanisms import SCRAM

from xmpp_post.xmpp import compat
from xmpp_post.xmpp.client import Client


def test_the_installed_slixmpp_passes_the_check() -> None:
    compat.check()


def test_install_patches_scram_and_escaping_once() -> None:
    compat.install()
    compat.install()
    assert SCRAM.Hi is compat.scram_hi
    assert compat.TOSTRING.escape is compat.escape
    with compat.slixmpp_escaping():
        assert compat.TOSTRING.escape is compat.SLIXMPP_ESCAPE
    assert compat.TOSTRING.escape is compat.escape


def test_the_installed_slixmpp_is_in_the_pinned_range() -> None:
    root = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
    pyproject = (root / "pyproject.toml").read_text()
    pin = re.search(r'"slixmpp>=([\d.]+),<([\d.]+)"', pyproject)
    assert pin is not None, "pyproject.toml pins slixmpp's tested range"

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split("."))

    low, high = version(pin[1]), version(pin[2])
    assert low <= version(slixmpp.__version__) < high
    assert low <= version(compat.WRITTEN_FOR) < high


def _refusal(monkeypatch: pytest.MonkeyPatch) -> str:
    with pytest.raises(compat.SlixmppIncompatible) as failure:
        compat.check()
    text = str(failure.value)
    assert f"slixmpp {slixmpp.__version__} is not supported" in text
    assert f"written for slixmpp {compat.WRITTEN_FOR}" in text
    return text


def test_a_missing_method_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(XEP_0198, "_handle_outgoing")
    assert "XEP_0198._handle_outgoing is missing" in _refusal(monkeypatch)


def test_a_missing_handler_method_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(FeatureMechanisms, "_handle_challenge")
    assert "FeatureMechanisms._handle_challenge is missing" in _refusal(monkeypatch)


def test_a_changed_signature_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def spawn(self: ClientXMPP, xml: object, extra: object) -> None: ...

    monkeypatch.setattr(ClientXMPP, "_spawn_event", spawn, raising=True)
    text = _refusal(monkeypatch)
    assert "ClientXMPP._spawn_event takes (self, xml, extra)" in text


def test_a_missing_function_of_a_module_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "SLIXMPP_ESCAPE", None)
    assert "slixmpp.xmlstream.tostring.escape is missing" in _refusal(monkeypatch)


def test_a_name_slixmpp_gained_that_ours_would_shadow(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ClientXMPP, "flush", lambda self: None, raising=False)
    assert "ClientXMPP.flush now exists in slixmpp" in _refusal(monkeypatch)


def test_an_unregistered_handler_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "SM_ACK_HANDLER", "Stream Management Ack (renamed)")
    assert "'Stream Management Ack (renamed)' stream handler is not registered" in \
        _refusal(monkeypatch)


def test_every_name_our_clients_add_is_checked() -> None:
    """What ``client.Client`` and ``compat.ClientBase`` add to slixmpp's client (names
    slixmpp does not have) is in ``compat.ADDED_NAMES``, which the check looks for."""
    added = {name for cls in (Client, compat.ClientBase) for name in vars(cls)
             if not name.startswith("__") and not hasattr(ClientXMPP, name)}
    assert added <= set(compat.ADDED_NAMES)
