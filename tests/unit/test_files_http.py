"""Files on the HTTP side, the XMPP side faked (``FakeRelay``): multipart/form-data on the
message endpoint and a file body on ntfy's, the limits (from Content-Length before
reading, and while reading), the spool emptied whatever happens, Idempotency-Key, the
per-address count of bodies arriving, and the metrics."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import FakeClient, MakeClient, examples
from xmpp_post.errors import LoginRefused, UploadFailed
from xmpp_post.http.context import SPOOL
from xmpp_post.testing import FakeRelay, ManualClock

AUTH = {"Authorization": "Basic " + base64.b64encode(b"alice:pw").decode()}
BOUNDARY = "xmpp-post-test-boundary"


def form(*parts: tuple[str, bytes, dict[str, str]]) -> bytes:
    """A multipart/form-data body: (name, content, extra headers or a filename)."""
    out = b""
    for name, content, extra in parts:
        disposition = f'form-data; name="{name}"'
        if "filename" in extra:
            disposition += f'; filename="{extra["filename"]}"'
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
        head += "".join(f"{key}: {value}\r\n" for key, value in extra.items()
                        if key != "filename")
        out += head.encode() + b"\r\n" + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


FORM_HEADERS = {**AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@pytest.fixture
async def files(make_client: MakeClient, tmp_path: Path) -> tuple[FakeClient, FakeRelay]:
    return await make_client(spool_dir=str(tmp_path), max_file_size="20000", max_body="1000")


def spooled(client: FakeClient) -> int:
    return len(client.app[SPOOL])


async def test_text_then_each_file_with_its_url(files: tuple[FakeClient, FakeRelay]) -> None:
    client, relay = files
    body = form(("body", b"Nightly report", {}), ("subject", b"CI", {}),
                ("file", PNG, {"filename": "graph.png", "Content-Type": "image/png"}),
                ("file", b"all green\n", {"filename": "../../report.txt"}))
    resp = await client.post("/msg/bob", data=body, headers=FORM_HEADERS)
    assert resp.status == 201, await resp.text()
    answer = await resp.json()
    assert answer["to"] == "bob@example.org"
    assert [(f["name"], f["size"], f["content_type"]) for f in answer["files"]] == [
        ("graph.png", len(PNG), "image/png"), ("report.txt", 10, "text/plain")]
    assert [u.sha256 for u in relay.uploaded] == [hashlib.sha256(PNG).hexdigest(),
                                                  hashlib.sha256(b"all green\n").hexdigest()]
    sent = [message for _, message in relay.sent]
    urls = [f["url"] for f in answer["files"]]
    assert [(m.body, m.oob_url, m.subject) for m in sent] == [
        ("Nightly report", None, "CI"), (urls[0], urls[0], None), (urls[1], urls[1], None)]
    assert spooled(client) == 0


async def test_files_alone_and_several_recipients(files: tuple[FakeClient, FakeRelay]) -> None:
    client, relay = files
    body = form(("to", b"bob", {}), ("to", b"carol", {}),
                ("file", b"log", {"filename": "backup.log"}))
    resp = await client.post("/msg", data=body, headers=FORM_HEADERS)
    assert resp.status == 201
    answer = await resp.json()
    assert [r["to"] for r in answer["results"]] == ["bob@example.org", "carol@example.org"]
    assert len(answer["files"]) == len(relay.uploaded) == 1  # uploaded once
    assert sorted(m.to for _, m in relay.sent) == ["bob@example.org", "carol@example.org"]
    assert {m.body for _, m in relay.sent} == {answer["files"][0]["url"]}


@pytest.mark.parametrize(("parts", "status", "code"), [
    ((("body", b"", {}),), 422, "missing_body"),
    ((("colour", b"red", {}), ("file", b"x", {"filename": "a"})), 400, "unknown_field"),
    ((("body", b"\xff", {}), ("file", b"x", {"filename": "a"})), 400, "invalid_encoding"),
    ((("file", b"x", {"filename": "a", "Content-Transfer-Encoding": "base64"}),), 400,
     "invalid_form"),
    ((("file", b"x", {"filename": "a", "Content-Encoding": "gzip"}),), 400, "invalid_form"),
    ((("body", b"x" * 1001, {}), ("file", b"x", {"filename": "a"})), 413,
     "payload_too_large"),
    (tuple(("file", b"x", {"filename": f"{n}"}) for n in range(11)), 400, "too_many_files"),
    (tuple(("body", b"x", {}) for _ in range(101)), 400, "invalid_form"),
])
async def test_refused_forms_send_nothing(files: tuple[FakeClient, FakeRelay],
                                          parts: tuple[tuple[str, bytes, dict[str, str]], ...],
                                          status: int, code: str) -> None:
    client, relay = files
    resp = await client.post("/msg/bob", data=form(*parts), headers=FORM_HEADERS)
    assert resp.status == status and (await resp.json())["error"] == code
    assert relay.uploaded == [] and relay.sent == [] and spooled(client) == 0


async def test_malformed_multipart_is_400(files: tuple[FakeClient, FakeRelay]) -> None:
    client, relay = files
    for content_type, body in (("multipart/form-data", b"x"),
                               (f"multipart/form-data; boundary={BOUNDARY}", b"garbage"),
                               (f"multipart/form-data; boundary={BOUNDARY}",
                                f"--{BOUNDARY}\r\nContent-Disposition: form-data; name="
                                f'"file"\r\n\r\nno end'.encode())):
        resp = await client.post("/msg/bob", data=body,
                                 headers={**AUTH, "Content-Type": content_type})
        assert resp.status == 400, content_type
        assert (await resp.json())["error"] == "invalid_form"
    assert relay.sent == [] and spooled(client) == 0


async def test_too_large_by_content_length_is_refused_before_reading(
        files: tuple[FakeClient, FakeRelay]) -> None:
    client, _ = files
    port = client.server.port
    assert port is not None
    head = (f"POST /msg/bob HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}"
            f"\r\nContent-Type: {FORM_HEADERS['Content-Type']}\r\n"
            f"Content-Length: 100000000\r\n\r\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())  # and no body at all
    answer = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413") and b"file_too_large" in answer
    metrics = await (await client.get("/metrics")).text()
    assert 'xmpp_post_uploads_total{outcome="file_too_large"} 1.0' in metrics


async def test_too_large_while_reading(files: tuple[FakeClient, FakeRelay]) -> None:
    client, relay = files

    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length
        yield form(("file", b"x" * 20001, {"filename": "big.bin"}))

    resp = await client.post("/msg/bob", data=chunks(), headers=FORM_HEADERS)
    assert resp.status == 413 and (await resp.json())["error"] == "file_too_large"
    together = form(*(("file", b"x" * 7000, {"filename": f"{n}"}) for n in range(3)))
    resp = await client.post("/msg/bob", data=together, headers=FORM_HEADERS)
    assert resp.status == 413 and "together" in (await resp.json())["message"]
    assert relay.uploaded == [] and spooled(client) == 0


async def test_the_senders_known_limit_applies(files: tuple[FakeClient, FakeRelay]) -> None:
    client, relay = files
    relay.file_limit = 100  # what the sender's upload service advertised
    resp = await client.put("/bob", data=b"\xff" * 5000, headers=AUTH)  # before reading
    assert resp.status == 413
    assert await resp.json() == {"error": "file_too_large", "http": 413, "code": 41301,
                                 "message": "the body is 5000 bytes; a file may have at "
                                            "most 100"}
    resp = await client.put("/bob", data=b"\xff" * 101, headers=AUTH)  # by the relay
    assert resp.status == 413
    resp = await client.post("/msg/bob", data=form(("file", b"x" * 101, {"filename": "a"})),
                             headers=FORM_HEADERS)  # while reading
    assert resp.status == 413 and "over 100 bytes" in (await resp.json())["message"]
    assert relay.uploaded == []


async def test_an_upload_that_fails_sends_nothing(files: tuple[FakeClient, FakeRelay]) -> None:
    client, relay = files
    relay.upload_fail = UploadFailed("the upload service answered 500")
    resp = await client.post("/msg/bob", data=form(("body", b"hi", {}),
                                                    ("file", b"x", {"filename": "a"})),
                             headers=FORM_HEADERS)
    assert resp.status == 502 and (await resp.json())["error"] == "upload_failed"
    assert relay.sent == [] and spooled(client) == 0
    metrics = await (await client.get("/metrics")).text()
    assert 'xmpp_post_uploads_total{outcome="upload_failed"} 1.0' in metrics


async def test_a_retry_with_the_same_key_uploads_nothing_again(
        files: tuple[FakeClient, FakeRelay]) -> None:
    client, relay = files
    key = {**FORM_HEADERS, "Idempotency-Key": "nightly-1"}
    body = form(("file", PNG, {"filename": "graph.png"}))
    first = await client.post("/msg/bob", data=body, headers=key)
    again = await client.post("/msg/bob", data=body, headers=key)
    assert first.status == again.status == 201
    assert await first.json() == await again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(relay.uploaded) == 1 and len(relay.sent) == 1
    # curl picks a new boundary for each try: the same request all the same
    again = await client.post("/msg/bob", data=body.replace(BOUNDARY.encode(), b"other-b"),
                              headers={**key, "Content-Type":
                                       "multipart/form-data; boundary=other-b"})
    assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    other = await client.post("/msg/bob", data=form(("file", PNG[:-1], {"filename":
                                                                          "graph.png"})),
                              headers=key)
    assert other.status == 422 and (await other.json())["error"] == "idempotency_key_reused"
    metrics = await (await client.get("/metrics")).text()
    assert 'xmpp_post_uploads_total{outcome="uploaded"} 1.0' in metrics
    assert f'xmpp_post_upload_bytes_total{{outcome="uploaded"}} {float(len(PNG))}' in metrics


async def test_a_tools_delivery_id_covers_files_and_a_refused_login_is_401(
        files: tuple[FakeClient, FakeRelay]) -> None:
    client, relay = files
    body = form(("body", b"release 1.2", {}), ("file", b"notes", {"filename": "notes.md"}))
    headers = {**FORM_HEADERS, "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    first = await client.post("/msg/bob", data=body, headers=headers)
    again = await client.post("/msg/bob", data=body, headers=headers)
    assert first.status == again.status == 201 and len(relay.uploaded) == 1
    assert again.headers["Idempotent-Replayed"] == "true"
    relay.upload_fail = LoginRefused("not authorized", condition="not-authorized")
    refused = await client.post("/msg/bob", data=body, headers=FORM_HEADERS)
    assert refused.status == 401 and (await refused.json())["error"] == "invalid_credentials"
    assert len(relay.sent) == 2 and spooled(client) == 0


async def test_a_template_does_not_take_multipart(files: tuple[FakeClient, FakeRelay]) -> None:
    client, relay = files
    resp = await client.post("/msg/bob?template=grafana",
                             data=form(("file", b"x", {"filename": "a"})),
                             headers=FORM_HEADERS)
    assert resp.status == 415 and relay.sent == []


# ntfy ------------------------------------------------------------------------------------

async def test_ntfy_put_with_a_filename(files: tuple[FakeClient, FakeRelay]) -> None:
    client, relay = files
    resp = await client.put("/bob", data=b"rsync: 12 files\n",  # as curl -T sends it
                            headers={**AUTH, "X-Filename": "backup.log"},
                            skip_auto_headers=["Content-Type"])
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert answer["message"] == "You received a file: backup.log"
    url = relay.uploaded[0].url
    assert answer["attachment"] == {"name": "backup.log", "type": "text/plain",
                                    "size": 16, "url": url}
    assert [(m.body, m.oob_url, m.id) for _, m in relay.sent] == [(url, url, answer["id"])]
    resp = await client.post("/bob?filename=b.log&message=Backup%20done", data=b"log",
                             headers={**AUTH, "Title": "db1"})
    sent = [m for _, m in relay.sent[1:]]
    assert [m.body for m in sent] == ["*db1*\nBackup done", relay.uploaded[1].url]
    assert spooled(client) == 0


async def test_ntfy_large_or_binary_bodies_are_files(make_client: MakeClient,
                                                     tmp_path: Path) -> None:
    client, relay = await make_client(spool_dir=str(tmp_path), max_body="1000")
    data = bytes(range(256)) * 400  # 100 KiB: spooled to disk beyond max_body
    resp = await client.post("/bob", data=data, headers=AUTH)
    assert resp.status == 200
    assert (await resp.json())["attachment"]["name"] == "attachment.bin"
    assert relay.uploaded[0].sha256 == hashlib.sha256(data).hexdigest()
    assert (await client.post("/bob", data="plain text", headers=AUTH)).status == 200
    assert relay.sent[-1][1].body == "plain text" and len(relay.uploaded) == 1


# arriving bodies --------------------------------------------------------------------------

async def _slow_upload(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A request whose file has begun to arrive, and stalls."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    part = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"slow.bin\"\r\n\r\n").encode() + b"x" * 5000
    writer.write((f"POST /msg/bob HTTP/1.1\r\nHost: x\r\nAuthorization: "
                  f"{AUTH['Authorization']}\r\nContent-Type: {FORM_HEADERS['Content-Type']}"
                  f"\r\nContent-Length: 10000\r\n\r\n").encode() + part)
    await writer.drain()
    return reader, writer


async def spool_holds(client: FakeClient, count: int) -> None:
    """Wait (on the spool's own event) until ``count`` requests have files spooled."""
    await asyncio.wait_for(client.app[SPOOL].wait_until(lambda: spooled(client) == count), 5)


async def test_slow_uploads_count_against_the_address(make_client: MakeClient,
                                                      tmp_path: Path) -> None:
    client, relay = await make_client(spool_dir=str(tmp_path), max_uploads_per_address="1",
                                      client_timeout="30")
    assert client.server.port is not None
    _reader, writer = await _slow_upload(client.server.port)
    await spool_holds(client, 1)  # its file is being spooled
    reader, second = await _slow_upload(client.server.port)
    answer = await asyncio.wait_for(reader.read(4096), 5)
    second.close()
    assert answer.startswith(b"HTTP/1.1 429") and b"too_many_uploads" in answer
    writer.close()  # the client vanishes mid-file: its spool goes with it
    await spool_holds(client, 0)
    resp = await client.post("/msg/bob", data=form(("file", b"x", {"filename": "a"})),
                             headers=FORM_HEADERS)
    assert resp.status == 201 and len(relay.uploaded) == 1


async def test_a_password_is_checked_before_any_file_is_read(make_client: MakeClient,
                                                             tmp_path: Path) -> None:
    client, relay = await make_client(spool_dir=str(tmp_path), client_timeout="30")
    relay.fail = LoginRefused("not authorized", condition="not-authorized")
    assert client.server.port is not None
    reader, writer = await _slow_upload(client.server.port)  # half a body, then nothing
    answer = await asyncio.wait_for(reader.read(4096), 5)  # not after client_timeout
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401") and b"invalid_credentials" in answer
    assert spooled(client) == 0 and relay.uploaded == []


async def test_a_stalled_upload_is_cut_off(make_client: MakeClient, tmp_path: Path,
                                           loop_clock: ManualClock) -> None:
    client, relay = await make_client(spool_dir=str(tmp_path), client_timeout="30")
    assert client.server.port is not None
    reader, writer = await _slow_upload(client.server.port)
    await spool_holds(client, 1)  # the file has begun to arrive, and stalls
    reading = asyncio.ensure_future(reader.read(4096))
    assert await loop_clock.run_until(reading.done) >= 30 and reading.done()
    answer = reading.result()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"client_too_slow" in answer
    assert spooled(client) == 0 and relay.uploaded == []


# anything at all -------------------------------------------------------------------------

_PIECES = st.sampled_from([
    f"--{BOUNDARY}\r\n".encode(), f"--{BOUNDARY}--\r\n".encode(), b"\r\n",
    b'Content-Disposition: form-data; name="file"; filename="a.bin"\r\n',
    b'Content-Disposition: form-data; name="body"\r\n', b"Content-Disposition: x\r\n",
    b"Content-Type: text/plain\r\n", b"Content-Length: 3\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n", b"\xff\xfe\x00", b"x" * 300,
    b'Content-Disposition: form-data; name="to"\r\n\r\ncarol\r\n'])


@settings(max_examples=examples(200), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.one_of(_PIECES, st.binary(max_size=40)), max_size=12))
async def test_any_multipart_body_is_answered_without_a_5xx(
        files: tuple[FakeClient, FakeRelay], pieces: list[bytes]) -> None:
    client, _ = files
    resp = await client.post("/msg/bob", data=b"".join(pieces), headers=FORM_HEADERS)
    assert resp.status < 500, await resp.text()
    assert set(await resp.json()) >= {"error", "message"} or resp.status == 201
    assert spooled(client) == 0
