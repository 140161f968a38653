"""OMEMO from an install without the extra ``oldmemo`` (docs/omemo.md, "Licences"):
the gateway runs as a process of its own whose ``import oldmemo`` fails (a folder first
on its ``PYTHONPATH`` holds an ``oldmemo`` that raises ``ImportError``, as a missing
package does), against the real Prosody and the OMEMO client of ``tests/helpers``."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, Client, Reply, basic
from tests.helpers.omemo import (
    TWOMEMO,
    GatewayStarter,
    PeerStarter,
    secrets_part,
    state_secret,
    stored_bytes,
    user,
)
from xmpp_post.lab.instances import GatewayProcess
from xmpp_post.lab.prosody import ProsodyServer

ROOT = Path(__file__).resolve().parents[2]

HIDING = "raise ImportError('hidden by the test: an install without xmpp-post[oldmemo]')\n"

Started = Callable[[], Awaitable[GatewayProcess]]


@pytest.fixture
async def gateway_without_0_3(pep_prosody: ProsodyServer, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Started]:
    hidden = tmp_path / "hidden"
    (hidden / "oldmemo").mkdir(parents=True)
    (hidden / "oldmemo" / "__init__.py").write_text(HIDING)
    secret = tmp_path / "secret"  # omemo_gateway's, when a test uses both
    if not secret.exists():
        state_secret(tmp_path)
    args = ["--domain", pep_prosody.domain, "--xmpp-server",
            f"127.0.0.1:{pep_prosody.c2s_port}", "--ca-file", str(pep_prosody.cert_file),
            "--connect-timeout", "5", "--ack-timeout", "5",
            "--state-dir", str(tmp_path / "state"), "--state-secret-file", str(secret)]
    process = GatewayProcess(args, tmp_path / "gateway.log")

    async def start() -> GatewayProcess:
        with monkeypatch.context() as patched:  # only the gateway's process
            patched.setenv("PYTHONPATH", str(hidden))
            await asyncio.to_thread(process.start)
        return process

    yield start
    await asyncio.to_thread(process.stop)


async def send(http: Client, gateway: GatewayProcess, sender: str, to: str,
               text: str) -> Reply:
    return await http.request("POST", f"{gateway.url}/msg/{to}?encrypt=omemo", data=text,
                              headers={"Authorization": basic(sender, PASSWORD),
                                       "Content-Type": "text/plain"})


async def test_without_the_extra_a_0_3_only_client_is_422_saying_why_and_sent_nothing(
        pep_prosody: ProsodyServer, http: Client,
        gateway_without_0_3: Started, peer: PeerStarter, tmp_path: Path) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    await peer(bob, "--only", "oldmemo")
    gateway = await gateway_without_0_3()
    text = f"never in clear {secrets.token_hex(8)}"
    reply = await send(http, gateway, alice, bob, text)
    assert reply.status == 422, reply.text
    assert reply.json["error"] == "omemo_unavailable"
    message = reply.json["message"]
    assert bob in message and "only OMEMO 0.3" in message
    assert "lacks OMEMO 0.3 support" in message and "xmpp-post[oldmemo]" in message
    assert secrets_part(text) not in stored_bytes(pep_prosody)
    log = (tmp_path / "gateway.log").read_text()
    assert "OMEMO versions available: OMEMO 2 (urn:xmpp:omemo:2); not OMEMO 0.3" in log
    assert log.count("OMEMO versions available") == 1
    assert "Traceback" not in log


async def test_without_the_extra_a_client_with_both_versions_gets_omemo_2(
        pep_prosody: ProsodyServer, http: Client,
        gateway_without_0_3: Started, peer: PeerStarter) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    client = await peer(bob)
    gateway = await gateway_without_0_3()
    text = f"omemo 2 only here {secrets.token_hex(8)}"
    reply = await send(http, gateway, alice, bob, text)
    assert reply.status == 201, reply.text
    got = await client.message()
    assert got["body"] == text and got["namespace"] == TWOMEMO
    assert secrets_part(text) not in stored_bytes(pep_prosody)


async def test_a_device_made_with_the_extra_keeps_working_without_it(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        gateway_without_0_3: Started, peer: PeerStarter, tmp_path: Path) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    client = await peer(bob)
    with_extra = await omemo_gateway()  # the same state directory and secret
    first = await http.post(with_extra, f"/msg/{bob}?encrypt=omemo", "first",
                            user=alice, password=PASSWORD)
    assert first.status == 201, first.text
    assert (await client.message())["body"] == "first"
    await with_extra.stop()
    gateway = await gateway_without_0_3()
    reply = await send(http, gateway, alice, bob, "second")
    assert reply.status == 201, reply.text
    got = await client.message()
    assert got["body"] == "second" and got["namespace"] == TWOMEMO
    log = (tmp_path / "gateway.log").read_text()
    assert "Purging backend eu.siacs.conversations.axolotl" in log, log  # off its 0.3 list
    assert "Traceback" not in log


# A process of its own (so: here, not in tests/unit): the gateway's modules imported
# with oldmemo missing, its start-up line, and `xmpp-post omemo fingerprint`.
HIDDEN = """
import sys
sys.modules["oldmemo"] = None  # as if not installed: ``import oldmemo`` fails
import asyncio, logging, tempfile
from pathlib import Path
logging.basicConfig(level=logging.INFO, format="%(message)s")
from xmpp_post.cli import main
from xmpp_post import service, relay_setup, omemo_command, bots_setup
from xmpp_post.xmpp import omemo_backends, omemo_devices, omemo_manager
from xmpp_post.state.memory_lasting import memory_lasting
from xmpp_post.state.sealed import SealedKeyValue
print("namespaces", omemo_backends.namespaces())
omemo_devices.OmemoDevices(SealedKeyValue(memory_lasting().kv, b"s" * 48, "omemo"))

from omemo.identity_key_pair import IdentityKeyPair
from xmpp_post.state.sqlite import SqliteState, sqlite_lasting
from xmpp_post.state_setup import OMEMO_PURPOSE
from xmpp_post.xmpp.omemo_store import AccountStorage

folder = Path(tempfile.mkdtemp())
secret = b"t" * 48
(folder / "secret").write_bytes(secret)
(folder / "secret").chmod(0o600)

async def make_key() -> None:
    state = SqliteState(folder / "state", key=secret)
    await state.start()
    try:
        sealed = SealedKeyValue(sqlite_lasting(state).kv, secret, OMEMO_PURPOSE)
        await IdentityKeyPair.get(AccountStorage(sealed, "alice@example.org"))
    finally:
        await state.close()

asyncio.run(make_key())
sys.exit(main(["omemo", "fingerprint", "alice@example.org", "--state-dir",
               str(folder / "state"), "--state-secret-file", str(folder / "secret")]))
"""


def test_without_oldmemo_the_gateway_imports_logs_and_prints_fingerprints() -> None:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(HIDDEN)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "namespaces ['urn:xmpp:omemo:2']"
    fingerprint = lines[-1].split()
    assert len(fingerprint) == 8 and all(len(part) == 8 for part in fingerprint), lines
    assert "OMEMO versions available: OMEMO 2 (urn:xmpp:omemo:2); not OMEMO 0.3" in done.stderr
    assert "Traceback" not in done.stderr
