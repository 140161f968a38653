"""OMEMO end to end (docs/omemo.md): a Prosody with PEP, offline storage and mod_mam, the
gateway with a state directory, and an OMEMO client in a process of its own
(``tests/helpers/omemo_receiver.py``: slixmpp-omemo, not the gateway's code) that
decrypts what the gateway sent. Prosody's data files never hold the text."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.helpers import PASSWORD, Client, basic, gateway_config
from tests.helpers.files import download, multipart
from tests.helpers.omemo import (
    OLDMEMO,
    TWOMEMO,
    GatewayStarter,
    PeerStarter,
    names,
    secrets_part,
    stored_bytes,
    user,
)
from xmpp_post.cli import main
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.service import Gateway
from xmpp_post.testing import ManualClock


async def send(http: Client, gateway: Gateway, sender: str, to: str, text: str,
               **fields: str) -> Any:
    query = "&".join(f"{name}={value}" for name, value in {"encrypt": "omemo",
                                                           **fields}.items())
    return await http.post(gateway, f"/msg/{to}?{query}", text, user=sender,
                           password=PASSWORD)


async def test_omemo_2_offline_and_archived_holds_no_text_and_decrypts(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        peer: PeerStarter) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    first = await peer(bob)
    await first.stop()  # offline: the message waits in Prosody's offline store and archive
    gateway = await omemo_gateway()
    text = f"db1 /var at 91% {secrets.token_hex(8)}"
    reply = await send(http, gateway, alice, bob, text)
    assert reply.status == 201, reply.text
    stored = stored_bytes(pep_prosody)
    assert text.encode() not in stored and secrets_part(text) not in stored
    assert TWOMEMO.encode() in stored  # the stanza is there, encrypted
    for store in ("offline", "archive"):  # Prosody's offline storage and mod_mam's
        kept = stored_bytes(pep_prosody, store)
        assert TWOMEMO.encode() in kept and secrets_part(text) not in kept, store
    again = await peer(bob)
    got = await again.message()
    assert got["body"] == text and got["namespace"] == TWOMEMO
    assert text not in (got["clear"] or "")


async def test_omemo_0_3_only_client_decrypts(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        peer: PeerStarter) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    client = await peer(bob, "--only", "oldmemo")
    gateway = await omemo_gateway()
    text = f"only 0.3 here {secrets.token_hex(8)}"
    reply = await send(http, gateway, alice, bob, text)
    assert reply.status == 201, reply.text
    got = await client.message()
    assert got["body"] == text and got["namespace"] == OLDMEMO


async def test_a_recipient_without_devices_is_422_and_sent_nothing(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter) -> None:
    alice, carol = user(pep_prosody, "alice"), user(pep_prosody, "carol")
    gateway = await omemo_gateway()
    text = f"never in clear {secrets.token_hex(8)}"
    reply = await send(http, gateway, alice, carol, text)
    assert reply.status == 422, reply.text
    assert reply.json["error"] == "omemo_unavailable"
    assert "OMEMO" in reply.json["message"] and carol in reply.json["message"]
    assert secrets_part(text) not in stored_bytes(pep_prosody)


async def test_without_a_state_secret_omemo_is_422_saying_why(
        pep_prosody: ProsodyServer, http: Client, tmp_path: Path) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    gateway = Gateway(gateway_config(pep_prosody))
    await gateway.start()
    try:
        reply = await send(http, gateway, alice, bob, "hello")
    finally:
        await gateway.stop()
    assert reply.status == 422, reply.text
    assert reply.json["error"] == "omemo_unavailable"
    assert "state_dir and state_secret_file" in reply.json["message"]


async def test_restarts_keep_one_device_and_a_second_device_decrypts_too(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        peer: PeerStarter) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    phone = await peer(bob, store="phone.json")
    laptop = await peer(bob, "--resource", "laptop", store="laptop.json")
    senders_devices = []
    for round_ in range(3):
        gateway = await omemo_gateway()
        text = f"round {round_} {secrets.token_hex(8)}"
        reply = await send(http, gateway, alice, bob, text)
        assert reply.status == 201, reply.text
        for name, client in (("phone", phone), ("laptop", laptop)):
            try:
                got = await client.message()
            except TimeoutError:
                raise AssertionError(f"round {round_}: {name} got nothing") from None
            assert got["body"] == text
        assert gateway.xmpp_relay.omemo is not None
        senders_devices.append(await gateway.xmpp_relay.omemo.fingerprint(alice))
        await gateway.stop()
    assert len(set(senders_devices)) == 1
    assert got["sender_devices"] == 1  # bob's client reads alice's list: one device


async def test_fingerprint_and_trust_commands_end_blind_trust(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        peer: PeerStarter, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    phone = await peer(bob, store="phone.json")
    gateway = await omemo_gateway()
    assert (await send(http, gateway, alice, bob, "first")).status == 201
    assert (await phone.message())["body"] == "first"
    assert gateway.xmpp_relay.omemo is not None
    shown = await gateway.xmpp_relay.omemo.fingerprint(alice)
    where = ["--state-dir", str(tmp_path / "state"),
             "--state-secret-file", str(tmp_path / "secret")]
    capsys.readouterr()
    # While the gateway runs: the fingerprint reads; trust, which writes, is refused.
    assert await asyncio.to_thread(main, ["omemo", "fingerprint", alice, *where]) == 0
    assert capsys.readouterr().out.strip() == shown
    assert await asyncio.to_thread(
        main, ["omemo", "trust", alice, bob, phone.ready["fingerprint"], *where]) == 2
    assert "in use" in capsys.readouterr().err
    await gateway.stop()
    assert await asyncio.to_thread(main, ["omemo", "fingerprint", alice, *where]) == 0
    assert capsys.readouterr().out.strip() == shown
    assert await asyncio.to_thread(
        main, ["omemo", "trust", alice, bob, "0" * 64, *where]) == 1  # not a device of bob
    fingerprint = phone.ready["fingerprint"]
    assert await asyncio.to_thread(
        main, ["omemo", "trust", alice, bob, fingerprint.upper(), *where]) == 0
    tablet = await peer(bob, "--resource", "tablet", store="tablet.json")  # a new device
    gateway = await omemo_gateway()
    assert (await send(http, gateway, alice, bob, "second")).status == 201
    assert (await phone.message())["body"] == "second"  # verified
    event = await tablet.next_event()  # not verified: not encrypted for it
    assert event["event"] == "error" and "second" not in str(event)


async def test_keys_for_contacts_only_are_422_saying_why_until_the_sender_is_one(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        peer: PeerStarter) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    private = await peer(bob, "--contacts-only", store="bob.json")
    gateway = await omemo_gateway()
    reply = await send(http, gateway, alice, bob, "not yet")
    assert reply.status == 422, reply.text
    assert reply.json["error"] == "omemo_unavailable"
    assert "contacts" in reply.json["message"]
    # alice's own client asks for bob's presence; bob's client grants it: now a contact
    await peer(alice, "--subscribe", bob, store="alice.json")
    await private.event("granted")
    await gateway.stop()
    gateway = await omemo_gateway()  # (a running gateway reads bob's lists again within
    # a minute; a fresh one reads them at once)
    reply = await send(http, gateway, alice, bob, "now as a contact")
    assert reply.status == 201, reply.text
    assert (await private.message())["body"] == "now as a contact"


async def test_a_file_is_uploaded_encrypted_and_its_aesgcm_url_sent_encrypted(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        peer: PeerStarter) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    client = await peer(bob)
    gateway = await omemo_gateway()
    data = b"customer 4711: card declined\n" * 500
    form = multipart(body="the report", encrypt="omemo",
                     file=("report.txt", data, "text/plain"))
    async with http.session.post(f"{gateway.url}/msg/{bob}", data=form,
                                 headers={"Authorization": basic(alice, PASSWORD)}) as answer:
        assert answer.status == 201, await answer.text()
        reply = await answer.json()
    url = reply["files"][0]["url"]
    assert url.startswith("aesgcm://") and "report" not in url
    # (the client decrypts each message in a task of its own: in either order)
    both = {(got := await client.message())["body"]: got for _ in range(2)}
    assert set(both) == {"the report", url} and url not in (both[url]["clear"] or "")
    address, fragment = url.split("#")
    uploaded, kind = await download(pep_prosody, "https://" + address.split("://", 1)[1])
    assert b"customer 4711" not in uploaded and kind == "application/octet-stream"
    iv, key = bytes.fromhex(fragment[:24]), bytes.fromhex(fragment[24:])
    assert AESGCM(key).decrypt(iv, uploaded, None) == data


async def test_ntfy_asks_with_x_encrypt(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        peer: PeerStarter) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    client = await peer(bob)
    gateway = await omemo_gateway()
    topic = bob.split("@")[0]
    reply = await http.request("PUT", f"{gateway.url}/{topic}", data="Backup failed",
                               headers={"Authorization": basic(alice, PASSWORD),
                                        "X-Title": "db1", "X-Encrypt": "omemo"})
    assert reply.status == 200, reply.text
    got = await client.message()
    assert got["body"].startswith("db1\n") and "Backup failed" in got["body"]
    assert "Backup" not in (got["clear"] or "") and got["namespace"] == TWOMEMO


async def test_a_members_only_non_anonymous_room_is_encrypted_to_its_members(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        peer: PeerStarter) -> None:
    alice, bob, owner = (user(pep_prosody, name) for name in ("alice", "bob", "owner"))
    async with Receiver(owner, PASSWORD, pep_prosody.c2s_port, pep_prosody.cert_file) as boss:
        room = f"secret{next(names)}@{pep_prosody.muc_domain}"
        await boss.create_room(room, "owner", membersonly="1", whois="anyone")
        for member in (alice, bob):
            await boss.set_affiliation(room, member, "member")
        client = await peer(bob, "--join", room)
        gateway = await omemo_gateway()
        text = f"room secret {secrets.token_hex(8)}"
        reply = await send(http, gateway, alice, room, text)
        assert reply.status == 201, reply.text
        got = await client.message()
        assert got["body"] == text and text not in (got["clear"] or "")
        open_room = f"open{next(names)}@{pep_prosody.muc_domain}"
        await boss.create_room(open_room, "owner")
        reply = await send(http, gateway, alice, open_room, "never in clear")
        assert reply.status == 422 and reply.json["error"] == "omemo_unavailable"
        assert "members-only and non-anonymous" in reply.json["message"]


async def test_a_listed_device_without_a_bundle_is_skipped(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        peer: PeerStarter) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    client = await peer(bob, "--phantom")
    gateway = await omemo_gateway()
    reply = await send(http, gateway, alice, bob, "despite the phantom")
    assert reply.status == 201, reply.text
    assert (await client.message())["body"] == "despite the phantom"


async def test_an_encrypted_stanza_over_the_servers_limit_is_413_and_not_sent(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        peer: PeerStarter) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    client = await peer(bob)
    gateway = await omemo_gateway(max_body="300000")
    big = "x" * (200 * 1024)  # fits in clear (256 KiB), not once encrypted (base64)
    reply = await send(http, gateway, alice, bob, big)
    assert reply.status == 413 and reply.json["error"] == "stanza_too_large", reply.text
    reply = await send(http, gateway, alice, bob, "the session lives on")
    assert reply.status == 201, reply.text
    assert (await client.message())["body"] == "the session lives on"


async def test_a_device_added_while_the_gateway_runs_is_found(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        peer: PeerStarter) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    phone = await peer(bob, store="phone.json")
    clock = ManualClock()
    gateway = await omemo_gateway(clock=clock)
    assert (await send(http, gateway, alice, bob, "one")).status == 201
    assert (await phone.message())["body"] == "one"
    laptop = await peer(bob, "--resource", "laptop", store="laptop.json")
    clock.advance(61)  # the device lists are read again after a minute
    assert (await send(http, gateway, alice, bob, "two")).status == 201
    assert (await phone.message())["body"] == "two"
    assert (await laptop.message())["body"] == "two"


async def test_a_tokens_encrypt_cannot_be_lowered(
        pep_prosody: ProsodyServer, http: Client, omemo_gateway: GatewayStarter,
        peer: PeerStarter, tmp_path: Path) -> None:
    alice, bob = user(pep_prosody, "alice"), user(pep_prosody, "bob")
    client = await peer(bob)
    password = tmp_path / "alice.pw"
    password.write_text(PASSWORD)
    os.chmod(password, 0o600)
    token = "xpt_" + secrets.token_urlsafe(24)
    digest = hashlib.sha256(token.encode()).hexdigest()
    toml = tmp_path / "gateway.toml"
    toml.write_text(f'[accounts."{alice}"]\npassword_file = "{password}"\n'
                    f'[tokens.alerts]\nsha256 = "{digest}"\naccount = "{alice}"\n'
                    'encrypt = "omemo"\n')
    gateway = await omemo_gateway(config_file=toml)
    bearer = {"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}
    reply = await http.request("POST", f"{gateway.url}/msg/{bob}", data="by token",
                               headers=bearer)
    assert reply.status == 201, reply.text
    got = await client.message()
    assert got["body"] == "by token" and got["namespace"] == TWOMEMO
    reply = await http.request("POST", f"{gateway.url}/msg/{bob}?encrypt=none",
                               data="in clear?", headers=bearer)
    assert reply.status == 403 and reply.json["error"] == "encryption_required"
