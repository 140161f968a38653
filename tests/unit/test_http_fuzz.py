"""Raw requests with arbitrary paths and headers, sent over a socket to the real web
application and HTTP protocol (the XMPP side faked): every answer is well formed, never
a 5xx, in the JSON shape, and never echoes the credentials."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import examples
from xmpp_post import config
from xmpp_post.http.server import GatewayRunner
from xmpp_post.service import web_app
from xmpp_post.testing import FakeRelay

SECRET = "s3cret-Passw0rd"
AUTH = "Basic " + base64.b64encode(f"alice@example.org:{SECRET}".encode()).decode()


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """The gateway's web application on a loop of its own (a thread), on a free port."""
    loop = asyncio.new_event_loop()
    ready: list[int] = []
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        cfg = config.load({"domain": ["example.org"], "max_header_size": "1024",
                           "client_timeout": "2"}, environ={})
        runner = GatewayRunner(web_app(cfg, FakeRelay()), access_log=None,
                               max_line_size=1024, max_field_size=1024,
                               keepalive_timeout=2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ready.append(runner.addresses[0][1])
        started.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    yield ready[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # half-closed: the answer must still come
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


TOKEN = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-"), min_size=1, max_size=12)
ANY = st.binary(max_size=60)
VALUE = st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
                  .map(str.encode), ANY)
PATH = st.one_of(
    ANY.map(lambda b: b"/msg/" + b),
    st.lists(st.sampled_from([b"bob", b"%FC", b"%C3%BC", b"%2F", b"%00", b"%0A", b",", b"/",
                              b"@", b"?to=x", b"#", b"%", b"..", b" ", b"\xfc"]),
             max_size=6).map(lambda parts: b"/msg/" + b"".join(parts)),
    st.sampled_from([b"/msg", b"/msg/", b"/", b"*", b"/msg/bob" + b"b" * 1100]))
HEADER = st.one_of(
    st.tuples(st.sampled_from([b"Content-Type", b"Idempotency-Key", b"X-Request-Id",
                               b"Authorization", b"Content-Length", b"Transfer-Encoding",
                               b"Connection", b"Expect", b"Content-Encoding"]), VALUE),
    st.tuples(TOKEN.map(str.encode), VALUE),
    st.tuples(ANY, VALUE))


@settings(max_examples=examples(400), deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from([b"POST", b"GET", b"OPTIONS", b"PUT", b"PROPFIND", b"P\xd6ST"]),
       path=PATH, headers=st.lists(HEADER, max_size=4),
       body=st.one_of(st.just(b"hello"), st.binary(max_size=40)),
       line_end=st.sampled_from([b"\r\n", b"\n"]))
def test_any_path_and_headers_get_a_well_formed_answer(
        port: int, method: bytes, path: bytes, headers: list[tuple[bytes, bytes]],
        body: bytes, line_end: bytes) -> None:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: gateway",
             b"Authorization: " + AUTH.encode(), b"Content-Type: text/plain",
             *(name + b": " + value for name, value in headers),
             b"Content-Length: " + str(len(body)).encode()]
    answer = exchange(port, line_end.join(lines) + line_end * 2 + body)
    assert answer.startswith(b"HTTP/1."), answer[:200]
    head, _, content = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert status < 500, answer[:500]
    assert SECRET.encode() not in answer and AUTH.split()[1].encode() not in answer
    if status >= 400 and method != b"HEAD":
        members = set(json.loads(content))  # ntfy's paths (at the root) add http and code
        assert {"error", "message"} <= members <= {"error", "message", "http", "code"}, \
            content
