"""The HTTPS PUT of uploads (``uploader.HttpsUploader``) against a local HTTPS server with
the lab's kind of certificate: the slot's headers and the file's bytes arrive; any other
status, an untrusted certificate, a redirect or a silent server is ``UploadFailed``."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from xmpp_post.errors import UploadFailed
from xmpp_post.files import FileToSend, UploadSlot
from xmpp_post.lab.prosody import make_certificate
from xmpp_post.testing import ManualClock
from xmpp_post.uploader import HttpsUploader
from xmpp_post.xmpp.client import tls_context

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("certs"), ["localhost"])


class Service:
    """A local HTTPS upload service; ``answer`` handles every PUT."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.port = 0

    def url(self, path: str = "/slot/report.pdf") -> str:
        return f"https://localhost:{self.port}{path}"


@pytest.fixture
async def service(certificate: tuple[Path, Path]) -> AsyncIterator[Service]:
    async def created(_request: web.Request) -> web.Response:
        return web.Response(status=201)

    server = Service(created)
    app = web.Application()

    async def put(request: web.Request) -> web.StreamResponse:
        return await server.answer(request)

    app.router.add_route("*", "/{path:.*}", put)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    server.port = runner.addresses[0][1]
    yield server
    await runner.cleanup()


@pytest.fixture
def file(tmp_path: Path) -> FileToSend:
    path = tmp_path / "f1"
    path.write_bytes(b"%PDF" + bytes(range(256)) * 2000)
    return FileToSend(path, "report.pdf", path.stat().st_size, "application/pdf")


def uploader(certificate: tuple[Path, Path], **timeouts: float) -> HttpsUploader:
    return HttpsUploader(tls_context(certificate[0], False), **timeouts)


async def test_the_file_and_the_slots_headers_arrive(service: Service, file: FileToSend,
                                                     certificate: tuple[Path, Path]) -> None:
    seen: dict[str, str] = {}

    async def store(request: web.Request) -> web.Response:
        data = await request.read()
        seen.update(request.headers)
        seen["sha256"] = hashlib.sha256(data).hexdigest()
        seen["method"] = request.method
        return web.Response(status=201)

    service.answer = store
    put = uploader(certificate)
    await put.put(UploadSlot(service.url(), service.url(), (("Authorization", "Bearer t"),)),
                  file)
    await put.close()
    assert seen["method"] == "PUT" and seen["Authorization"] == "Bearer t"
    assert seen["Content-Length"] == str(file.size)
    assert seen["Content-Type"] == "application/pdf"
    assert "Transfer-Encoding" not in seen
    assert seen["sha256"] == hashlib.sha256(file.path.read_bytes()).hexdigest()


@pytest.mark.parametrize("status", [400, 401, 409, 413, 500, 302])
async def test_any_other_status_fails(service: Service, file: FileToSend, status: int,
                                      certificate: tuple[Path, Path]) -> None:
    async def refuse(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, headers={"Location": service.url("/elsewhere")})

    service.answer = refuse
    put = uploader(certificate)
    with pytest.raises(UploadFailed) as raised:
        await put.put(UploadSlot(service.url(), service.url()), file)
    await put.close()
    assert f"answered {status}" in raised.value.message


async def test_an_untrusted_certificate_fails(service: Service, file: FileToSend) -> None:
    put = HttpsUploader(ssl.create_default_context())  # the system's trust store only
    with pytest.raises(UploadFailed) as raised:
        await put.put(UploadSlot(service.url(), service.url()), file)
    await put.close()
    assert "certificate" in raised.value.message


async def test_a_silent_service_fails(service: Service, file: FileToSend,
                                      certificate: tuple[Path, Path],
                                      loop_clock: ManualClock) -> None:
    release, arrived = asyncio.Event(), asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.Response(status=201)

    service.answer = hang
    put = uploader(certificate, read_timeout=60)
    putting = asyncio.create_task(put.put(UploadSlot(service.url(), service.url()), file))
    try:
        await arrived.wait()
        # nothing comes back, second after second: never given up before read_timeout
        # (later when the body took turns of the loop to go out)
        assert await loop_clock.run_until(putting.done) >= 60 and putting.done()
        with pytest.raises(UploadFailed) as raised:
            await putting
    finally:
        release.set()
        await put.close()
    assert "failed" in raised.value.message
