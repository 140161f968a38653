"""``xmpp-post omemo fingerprint ACCOUNT`` and ``xmpp-post omemo trust ACCOUNT JID
FINGERPRINT``: the gateway's OMEMO keys in the state directory, read and changed
without a server (docs/omemo.md).

* ``fingerprint`` prints the fingerprint of the gateway's device for ``ACCOUNT`` as
  clients show it (eight groups of eight hex digits), so its users can verify it;
* ``trust`` verifies a device of ``JID`` that the gateway has seen (it sent ``ACCOUNT``'s
  messages to it), by its fingerprint (spaces and case do not matter). From then on the
  devices of ``JID`` are no longer trusted blindly: a new one needs ``trust`` too.

Both read the state directory (``--state-dir``) with its key (``--state-secret-file``),
as ``serve`` does. ``fingerprint`` only reads (the database opened read-only), so it
runs while the gateway runs too; ``trust`` changes the keys, so it runs while the
gateway is stopped (the directory is locked while it runs; the error says so), and the
next start reads what it changed.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path

import xeddsa
from omemo.identity_key_pair import IdentityKeyPair
from omemo.session_manager import SessionManager

from xmpp_post import config, jids
from xmpp_post.config.accounts import read_secret
from xmpp_post.errors import ConfigError
from xmpp_post.state.sealed import SealedKeyValue, SealedValueError
from xmpp_post.state.sqlite import SqliteState, sqlite_lasting
from xmpp_post.state.sqlite.read_only import ReadOnlyKeyValue
from xmpp_post.state_setup import OMEMO_PURPOSE
from xmpp_post.xmpp.omemo_manager import VERIFIED
from xmpp_post.xmpp.omemo_store import AccountStorage

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def _storage_args(state_dir: str | None, secret_file: str | None,
                  config_file: Path | None) -> tuple[Path, bytes]:
    directory = config.load_setting("state_dir", state_dir, config_file=config_file)
    secret_path = config.load_setting("state_secret_file", secret_file,
                                      config_file=config_file)
    if directory is None:
        raise ConfigError("state_dir", "is required: OMEMO's keys are in the state directory")
    if secret_path is None:
        raise ConfigError("state_secret_file", "is required: OMEMO's keys are sealed with it")
    secret = read_secret(secret_path, "state_secret_file").encode()
    if len(secret) < config.MIN_STATE_KEY:
        raise ConfigError("state_secret_file", f"holds fewer than {config.MIN_STATE_KEY} bytes")
    return directory, secret


async def _with_storage(directory: Path, secret: bytes, account: str,
                        fingerprint_only: bool, jid: str = "", wanted: str = "") -> int:
    if fingerprint_only:
        reader = ReadOnlyKeyValue(directory)
        try:
            return await _fingerprint(SealedKeyValue(reader, secret, OMEMO_PURPOSE), account)
        finally:
            reader.close()
    state = SqliteState(directory, key=secret)
    await state.start()
    try:
        sealed = SealedKeyValue(sqlite_lasting(state).kv, secret, OMEMO_PURPOSE)
        if not await _has_device(AccountStorage(sealed, account), account):
            return EXIT_FAILURE
        return await _trust(AccountStorage(sealed, account), account, jid, wanted)
    finally:
        await state.close()


async def _has_device(storage: AccountStorage, account: str) -> bool:
    if (await storage.load("/ikp/key")).is_nothing:
        print(f"xmpp-post: the gateway has no OMEMO device for {account} yet: it makes "
              "one with the first message sent with encrypt=omemo", file=sys.stderr)
        return False
    return True


async def _fingerprint(kv: SealedKeyValue, account: str) -> int:
    storage = AccountStorage(kv, account)
    if not await _has_device(storage, account):
        return EXIT_FAILURE
    own = await IdentityKeyPair.get(storage)
    print(" ".join(SessionManager.format_identity_key(own.identity_key)))
    return EXIT_OK


async def _trust(storage: AccountStorage, account: str, jid: str, wanted: str) -> int:
    want = "".join(wanted.split()).lower()
    devices = (await storage.load_list(f"/devices/{jid}/list", int)).maybe([])
    for device_id in devices:
        key = (await storage.load_bytes(f"/devices/{jid}/{device_id}/identity_key")).maybe(b"")
        if key and xeddsa.ed25519_pub_to_curve25519_pub(key).hex() == want:
            encoded = base64.urlsafe_b64encode(key).decode("ascii")
            await storage.store(f"/trust/{jid}/{encoded}", VERIFIED)
            print(f"verified device {device_id} of {jid} for {account}; new devices of "
                  f"{jid} now need verifying too")
            return EXIT_OK
    print(f"xmpp-post: {account} knows no device of {jid} with that fingerprint ("
          f"{len(devices)} known): the gateway learns a recipient's devices when it "
          "encrypts a message to them", file=sys.stderr)
    return EXIT_FAILURE


def command(action: str, account: str, jid: str | None, fingerprint: str | None,
            state_dir: str | None, secret_file: str | None,
            config_file: Path | None) -> int:
    """Run ``omemo fingerprint`` or ``omemo trust``; the exit status."""
    try:
        account = jids.account(account, "")
        recipient = jids.account(jid, "") if jid else ""
        directory, secret = _storage_args(state_dir, secret_file, config_file)
        return asyncio.run(_with_storage(directory, secret, account, action == "fingerprint",
                                         recipient, fingerprint or ""))
    except jids.JidError as exc:
        print(f"xmpp-post: not a bare JID user@domain ({exc})", file=sys.stderr)
        return EXIT_CONFIG
    except ConfigError as exc:
        print(f"xmpp-post: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except SealedValueError as exc:
        print(f"xmpp-post: {exc}", file=sys.stderr)
        return EXIT_FAILURE
