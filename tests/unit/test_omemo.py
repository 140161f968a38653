"""Unit tests of OMEMO's parts that need no server (docs/omemo.md): keys sealed at rest,
the encrypt field and its defaults, the encrypted stanza's clear parts, XEP-0454 files.
Encryption against real clients is in tests/e2e/test_omemo_e2e.py."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from xmpp_post import config
from xmpp_post.auth.basic import BasicScheme
from xmpp_post.auth.tokens import TokenScheme
from xmpp_post.config.live import LiveConfig
from xmpp_post.errors import ConfigError, GatewayError
from xmpp_post.files import FileToSend
from xmpp_post.fronts.message_request import TEXT, message, messages
from xmpp_post.model import OutgoingMessage, Scope, Sender
from xmpp_post.state.memory_lasting import memory_lasting
from xmpp_post.state.sealed import SealedKeyValue, SealedValueError
from xmpp_post.state_setup import omemo_keys
from xmpp_post.xmpp.omemo_devices import envelope
from xmpp_post.xmpp.omemo_files import aesgcm_url, encrypted_copy
from xmpp_post.xmpp.omemo_store import AccountStorage
from xmpp_post.xmpp.stanzas import encrypted_message_bytes, encrypted_text

SECRET = b"s" * 48


async def test_sealed_values_open_only_with_their_secret_and_name() -> None:
    inner = memory_lasting().kv
    sealed = SealedKeyValue(inner, SECRET, "omemo keys")
    await sealed.put("omemo:alice@example.org", "/ikp/key", b"private key bytes")
    assert await sealed.get("omemo:alice@example.org", "/ikp/key") == b"private key bytes"
    stored = await inner.get("omemo:alice@example.org", "/ikp/key")
    assert stored is not None and b"private key" not in stored
    other = SealedKeyValue(inner, b"t" * 48, "omemo keys")
    with pytest.raises(SealedValueError):
        await other.get("omemo:alice@example.org", "/ikp/key")
    await inner.put("omemo:alice@example.org", "/moved", stored)  # under another name
    with pytest.raises(SealedValueError):
        await sealed.get("omemo:alice@example.org", "/moved")


async def test_account_storage_round_trips_json_and_hashes_long_names() -> None:
    storage = AccountStorage(memory_lasting().kv, "alice@example.org")
    long_key = "/devices/" + "x" * 300 + "/list"
    await storage.store(long_key, [1, 2, 3])
    fresh = AccountStorage(storage._values, "alice@example.org")  # no cache
    assert (await fresh.load_list(long_key, int)).from_just() == [1, 2, 3]
    assert (await fresh.load("/absent")).is_nothing


def test_the_encrypt_field_and_its_defaults() -> None:
    alice = Sender("alice@example.org", "pw")
    assert message(TEXT, None, b"hi", "bob", alice).encrypt == "none"
    [asked] = messages(TEXT, None, b"hi", "bob", alice, query="encrypt=OMEMO").items
    assert isinstance(asked, OutgoingMessage) and asked.encrypt == "omemo"
    with pytest.raises(GatewayError) as invalid:
        messages(TEXT, None, b"hi", "bob", alice, query="encrypt=pgp")
    assert invalid.value.code == "invalid_encrypt"
    defaulted = Sender("alice@example.org", "pw", encrypt="omemo")
    assert message(TEXT, None, b"hi", "bob", defaulted).encrypt == "omemo"
    scope = Scope(encrypt="omemo")
    assert scope.encryption_for(None, "none") == "omemo"
    assert scope.encryption_for("omemo", "none") == "omemo"
    with pytest.raises(GatewayError) as refused:
        scope.encryption_for("none", "none")
    assert refused.value.code == "encryption_required"
    assert Scope().encryption_for("none", "omemo") == "none"  # a default may be lowered


def test_encrypt_settings_and_omemo_needs_a_sealed_store(tmp_path: Path) -> None:
    cfg = config.load({"domain": ["example.org"], "encrypt": "omemo"}, environ={})
    with pytest.raises(ConfigError) as caught:
        omemo_keys(cfg, memory_lasting())
    assert "state_dir" in str(caught.value)
    with pytest.raises(ConfigError):
        config.load({"domain": ["example.org"], "encrypt": "pgp"}, environ={})
    plain = config.load({"domain": ["example.org"]}, environ={})
    keys, why = omemo_keys(plain, memory_lasting())
    assert keys is None and "state_dir and state_secret_file" in why
    password = tmp_path / "pw"
    password.write_text("pw")
    os.chmod(password, 0o600)
    toml = tmp_path / "c.toml"
    toml.write_text(f'domain = ["example.org"]\n[accounts."a@example.org"]\n'
                    f'password_file = "{password}"\nencrypt = "omemo"\n')
    loaded = config.load({}, environ={}, config_file=toml)
    assert loaded.sections.get("accounts")["a@example.org"].encrypt == "omemo"
    with pytest.raises(ConfigError) as needs:
        omemo_keys(loaded, memory_lasting())
    assert "accounts" in str(needs.value)


def test_the_encrypted_stanza_carries_no_text_in_clear() -> None:
    secret = OutgoingMessage(to="bob@example.org", body="db1 <down> & out",
                             subject="ALERT", thread="t1", receipt=True,
                             oob_url="https://x.example/f", encrypt="omemo")
    assert encrypted_text(secret) == "ALERT\n\ndb1 <down> & out"
    data = encrypted_message_bytes(secret, "chat", "id1", "en",
                                   '<encrypted xmlns="urn:xmpp:omemo:2" />',
                                   "urn:xmpp:omemo:2").decode()
    for clear in ("db1", "ALERT", "x.example"):
        assert clear not in data
    for part in ('<encryption xmlns="urn:xmpp:eme:0" namespace="urn:xmpp:omemo:2"',
                 '<store xmlns="urn:xmpp:hints" />', "<thread>t1</thread>",
                 '<request xmlns="urn:xmpp:receipts" />', "OMEMO"):
        assert part in data


def test_the_envelope_escapes_the_text() -> None:
    made = envelope("a <b> & 'c'", "alice@example.org", "bob@example.org")
    assert "a &lt;b&gt; &amp; &apos;c&apos;" in made
    assert '<to jid="bob@example.org"/>' in made and "<rpad>" in made


async def test_files_are_encrypted_for_xep_0454(tmp_path: Path) -> None:
    source = tmp_path / "spooled"
    data = os.urandom(300_000)
    source.write_bytes(data)
    sealed, fragment = await encrypted_copy(FileToSend(source, "report.pdf", len(data),
                                                       "application/pdf"))
    assert sealed.size == len(data) + 16 and sealed.name.endswith(".pdf")
    assert "report" not in sealed.name and sealed.content_type == "application/octet-stream"
    iv, key = bytes.fromhex(fragment[:24]), bytes.fromhex(fragment[24:])
    assert AESGCM(key).decrypt(iv, sealed.path.read_bytes(), None) == data
    assert (aesgcm_url("https://up.example.org/a/b.pdf", fragment)
            == f"aesgcm://up.example.org/a/b.pdf#{fragment}")


def test_a_tokens_encrypt_is_a_floor_and_an_accounts_a_default(tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("pw")
    os.chmod(password, 0o600)
    digest = hashlib.sha256(b"xpt_x").hexdigest()
    toml = tmp_path / "c.toml"
    toml.write_text(f'domain = ["example.org"]\n'
                    f'[accounts."a@example.org"]\npassword_file = "{password}"\n'
                    f'[accounts."b@example.org"]\npassword_file = "{password}"\n'
                    f'encrypt = "omemo"\n'
                    f'[tokens.ci]\nsha256 = "{digest}"\naccount = "a@example.org"\n'
                    f'encrypt = "omemo"\n')
    live = LiveConfig(config.load({}, environ={}, config_file=toml))
    tokens = TokenScheme(live)
    sender = tokens.sender(live.tokens.by_name["ci"])
    assert message(TEXT, None, b"hi", "bob", sender).encrypt == "omemo"
    with pytest.raises(GatewayError) as refused:
        messages(TEXT, None, b"hi", "bob", sender, query="encrypt=none")
    assert refused.value.code == "encryption_required"
    basic = BasicScheme(("example.org",), live.encrypt_for)
    assert basic.account("b@example.org", "pw").encrypt == "omemo"  # its account's default
    lowered = messages(TEXT, None, b"hi", "bob", basic.account("b@example.org", "pw"),
                       query="encrypt=none").items[0]
    assert isinstance(lowered, OutgoingMessage) and lowered.encrypt == "none"
    assert basic.account("c@example.org", "pw").encrypt == "none"
    with pytest.raises(ConfigError):
        toml.write_text(toml.read_text().replace('encrypt = "omemo"\n', 'encrypt = "yes"\n'))
        config.load({}, environ={}, config_file=toml)


def test_the_omemo_librarys_debug_log_which_holds_plaintext_never_shows() -> None:
    import logging

    root = logging.getLogger()
    was = root.level
    root.setLevel(logging.DEBUG)
    try:
        assert not logging.getLogger("omemo.core").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(was)
