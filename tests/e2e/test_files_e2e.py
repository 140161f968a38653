"""Files end to end: the real Prosody's mod_http_file_share over HTTPS (XEP-0363), real
receiving clients, and downloads of what they were sent.

A receiving client gets the text, then each file's download URL as the body with the
same URL as XEP-0066 out-of-band data; downloading it (the lab's certificate trusted)
gives the same bytes. Rooms, several recipients (one upload) and ntfy's PUT with a file
name work so; each refusal (over the server's limit, a quota with and without a time to
retry, no upload service, a certificate not trusted) is its own answer with nothing
sent, and the spool is empty after every request.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import (
    PASSWORD,
    Account,
    AccountFactory,
    Client,
    ReceiverFactory,
    basic,
    gateway_config,
)
from tests.helpers.faults import nothing_else_arrived
from tests.helpers.files import download, multipart
from xmpp_post.http.context import SPOOL
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Received, Receiver
from xmpp_post.service import Gateway

OOB = '<x xmlns="jabber:x:oob"><url>{}</url></x>'
_rooms = itertools.count()
REPORT = b"<html><body>" + b"<p>all 1,204 tests passed</p>" * 2000 + b"</body></html>"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 300


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def post_form(http: Client, gateway: Gateway, path: str, sender: Account,
                    form: aiohttp.FormData,
                    headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
    response = await http.session.post(gateway.url + path, data=form, headers={
        "Authorization": basic(sender.jid, sender.password), **(headers or {})})
    await response.read()
    return response


def carries_file(got: Received, url: str) -> bool:
    """The body is exactly the URL, and the URL is the out-of-band data too."""
    return got.body == url and OOB.format(url) in got.xml


def spool_is_empty(gateway: Gateway) -> bool:
    return len(gateway.app[SPOOL]) == 0


async def test_a_report_with_its_files_reaches_the_recipient(
        gateway: Gateway, http: Client, account: AccountFactory, receiver: ReceiverFactory,
        prosody: ProsodyServer) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    form = multipart(body="Nightly report", file=[("report.html", REPORT, "text/html"),
                                                  ("graph.png", PNG, "image/png")])
    answer = await post_form(http, gateway, f"/msg/{bob.jid}", alice, form)
    assert answer.status == 201, await answer.text()
    reply = await answer.json()
    files = reply["files"]
    assert [(f["name"], f["size"], f["content_type"]) for f in files] == [
        ("report.html", len(REPORT), "text/html"), ("graph.png", len(PNG), "image/png")]
    got = await inbox.collect(3)
    assert got[0].body == "Nightly report" and "jabber:x:oob" not in got[0].xml
    assert got[0].id == reply["id"]
    for message, file, data in zip(got[1:], files, (REPORT, PNG), strict=True):
        assert carries_file(message, file["url"]), message.xml
        assert file["url"].startswith(f"https://{prosody.domain}:{prosody.https_port}/")
        downloaded, kind = await download(prosody, file["url"])
        assert sha256(downloaded) == sha256(data) and kind == file["content_type"]
    assert spool_is_empty(gateway)
    metrics = await (await http.session.get(gateway.url + "/metrics")).text()
    assert 'xmpp_post_uploads_total{outcome="uploaded"} 2.0' in metrics


async def test_a_file_to_a_room(gateway: Gateway, http: Client, account: AccountFactory,
                                receiver: ReceiverFactory, prosody: ProsodyServer) -> None:
    owner = await receiver(account("owner"))
    room = f"files{next(_rooms)}@{prosody.muc_domain}"
    await owner.create_room(room, "owner")
    alice = account("alice")
    answer = await post_form(http, gateway, f"/msg/{room}", alice,
                             multipart(file=("build.log", b"ok\n" * 100, "text/plain")))
    assert answer.status == 201, await answer.text()
    reply = await answer.json()
    assert reply["type"] == "groupchat"
    got = await owner.next()
    assert got.type == "groupchat" and got.sender == f"{room}/{alice.local}"
    assert carries_file(got, reply["files"][0]["url"])
    assert (await download(prosody, got.body))[0] == b"ok\n" * 100


async def test_several_recipients_get_one_upload(
        gateway: Gateway, http: Client, account: AccountFactory, receiver: ReceiverFactory,
        prosody: ProsodyServer) -> None:
    alice, bob, carol = account("alice"), account("bob"), account("carol")
    inboxes = [await receiver(bob), await receiver(carol)]
    answer = await post_form(http, gateway, f"/msg/{bob.local},{carol.local}", alice,
                             multipart(body="screenshot", file=("s.png", PNG, "image/png")))
    assert answer.status == 201, await answer.text()
    reply = await answer.json()
    assert [r["status"] for r in reply["results"]] == [201, 201]
    url = reply["files"][0]["url"]
    for inbox in inboxes:
        text, file = await inbox.collect(2)
        assert text.body == "screenshot" and carries_file(file, url)
    issued = prosody.log_file.read_text().count(f"Issuing upload slot to {alice.jid}")
    assert issued == 1


async def test_ntfy_put_with_a_filename(gateway: Gateway, http: Client,
                                        account: AccountFactory, receiver: ReceiverFactory,
                                        prosody: ProsodyServer) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    log = b"rsync: 1,204 files, 3.2 GB\nbackup of db1 finished\n"
    reply = await http.request("PUT", f"{gateway.url}/{bob.local}", data=log, headers={
        "Authorization": basic(alice.jid, alice.password), "Filename": "backup.log",
        "Content-Type": "text/plain"})
    assert reply.status == 200, reply.text
    attachment = reply.json["attachment"]
    assert reply.json["message"] == "You received a file: backup.log"
    assert (attachment["name"], attachment["type"], attachment["size"]) == (
        "backup.log", "text/plain", len(log))
    got = await inbox.next()
    assert carries_file(got, attachment["url"]) and got.id == reply.json["id"]
    assert (await download(prosody, attachment["url"]))[0] == log
    await nothing_else_arrived(http, gateway, alice, inbox, bob.local)  # no text before it


# refusals: a server of small limits ------------------------------------------------------

LIMIT = 5000


@pytest.fixture(scope="module")
def small() -> Iterator[ProsodyServer]:
    """A Prosody whose upload service takes files of 5,000 bytes, 12,000 a day each."""
    server = ProsodyServer(muc=False, file_share_limit=LIMIT, file_share_quota=12_000)
    server.start()
    yield server
    server.close()


_users = itertools.count()


def user(server: ProsodyServer) -> Account:
    name = f"u{next(_users)}"
    return Account(server.register(name, PASSWORD), PASSWORD)


@pytest.fixture
async def small_gateway(small: ProsodyServer) -> AsyncIterator[Gateway]:
    gateway = Gateway(gateway_config(small, retry_after="7"))
    await gateway.start()
    yield gateway
    await gateway.stop()


async def test_over_the_servers_limit_is_413_and_nothing_is_sent(
        small: ProsodyServer, small_gateway: Gateway, http: Client) -> None:
    alice, bob = user(small), user(small)
    inbox = Receiver(bob.jid, bob.password, small.c2s_port, small.cert_file)
    await inbox.start()
    try:
        form = multipart(body="text", file=("big.bin", b"x" * (LIMIT + 1), "x/y"))
        answer = await post_form(http, small_gateway, f"/msg/{bob.jid}", alice, form)
        assert answer.status == 413
        error = await answer.json()
        assert error["error"] == "file_too_large" and str(LIMIT) in error["message"]
        # Now known: a body whose Content-Length says more is refused before it is read.
        assert small_gateway.xmpp_relay.known_file_limit(small.domain) == LIMIT
        reply = await http.request("PUT", f"{small_gateway.url}/{bob.local}",
                                   data=b"\xff" * (LIMIT + 1),
                                   headers={"Authorization": basic(alice.jid, PASSWORD)})
        assert reply.status == 413 and reply.json["code"] == 41301
        await nothing_else_arrived(http, small_gateway, alice, inbox, bob.jid)
    finally:
        await inbox.stop()
    assert spool_is_empty(small_gateway)


async def test_the_daily_quota_and_a_time_to_retry(small: ProsodyServer,
                                                   small_gateway: Gateway,
                                                   http: Client) -> None:
    alice, bob = user(small), user(small)
    for _ in range(2):  # 10,000 of the 12,000 bytes a day
        answer = await post_form(http, small_gateway, f"/msg/{bob.jid}", alice,
                                 multipart(file=("a.bin", b"x" * LIMIT, "x/y")))
        assert answer.status == 201, await answer.text()
    answer = await post_form(http, small_gateway, f"/msg/{bob.jid}", alice,
                             multipart(file=("a.bin", b"x" * LIMIT, "x/y")))
    assert answer.status == 503 and answer.headers["Retry-After"] == "7"
    error = await answer.json()
    assert error["error"] == "upload_quota" and "Daily quota reached" in error["message"]
    # A service that says until when (the lab's module, XEP-0363's <retry stamp/>).
    answer = await post_form(http, small_gateway, f"/msg/{bob.jid}", user(small),
                             multipart(file=("retry-in-90.txt", b"x", "text/plain")))
    assert answer.status == 429 and (await answer.json())["error"] == "upload_quota"
    assert 85 <= int(answer.headers["Retry-After"]) <= 90


# refusals: servers without a usable upload service --------------------------------------

@pytest.fixture(scope="module")
def odd_servers() -> Iterator[tuple[ProsodyServer, ProsodyServer]]:
    """A Prosody without an upload service, and one whose HTTPS certificate nobody trusts."""
    without = ProsodyServer(muc=False, file_share=False)
    untrusted = ProsodyServer(muc=False, domain="localhost", file_share_trusted=False)
    without.start()
    untrusted.start()
    yield without, untrusted
    without.close()
    untrusted.close()


async def test_no_upload_service_is_501_and_an_untrusted_one_502(
        odd_servers: tuple[ProsodyServer, ProsodyServer], http: Client) -> None:
    for server, status, code in ((odd_servers[0], 501, "upload_unavailable"),
                                 (odd_servers[1], 502, "upload_failed")):
        alice, bob = user(server), user(server)
        gateway = Gateway(gateway_config(server))
        await gateway.start()
        try:
            answer = await post_form(http, gateway, f"/msg/{bob.jid}", alice,
                                     multipart(body="hi", file=("a.txt", b"a", "text/plain")))
            assert answer.status == status, await answer.text()
            assert (await answer.json())["error"] == code
            inbox = Receiver(bob.jid, bob.password, server.c2s_port, server.cert_file)
            await inbox.start()
            try:  # nothing was sent: the first message to arrive is the one sent now
                await nothing_else_arrived(http, gateway, alice, inbox, bob.jid)
            finally:
                await inbox.stop()
            assert spool_is_empty(gateway)
        finally:
            await gateway.stop()


def test_the_lab_serves_uploads_over_https(prosody: ProsodyServer) -> None:
    config = prosody.config_file.read_text()
    assert f'Component "{prosody.upload_domain}" "http_file_share"' in config
    assert f'http_external_url = "https://{prosody.domain}:{prosody.https_port}/"' in config
    assert Path(prosody.cert_file).exists()
