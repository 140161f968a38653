"""The web page's template preview: ``python -m bench.web_render [--renders N]``.

Posts each built-in template's shipped sample to ``POST /templates/NAME/render`` (HTTP
Basic, the relay faked, so the login costs nothing) through the real application over
loopback, one request after another, and prints the median and 95th percentile time
per render: what the page waits for after each pause in typing. Run on demand only:
never as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from xmpp_post import config
from xmpp_post.fronts.web import web_render as render
from xmpp_post.service import web_app
from xmpp_post.testing import FakeRelay

AUTH = {"Authorization": "Basic " + base64.b64encode(b"alice@example.org:pw").decode(),
        "Content-Type": "application/json"}


async def measure(renders: int) -> None:
    settings = config.load({"domain": ["example.org"]}, environ={})
    client: TestClient[aiohttp.web.Request, aiohttp.web.Application] = TestClient(
        TestServer(web_app(settings, FakeRelay())))
    async with client:
        for name, sample in render.samples().items():
            data = json.dumps(sample["payload"])
            took: list[float] = []
            for _ in range(renders):
                started = time.perf_counter()
                response = await client.post(f"/templates/{name}/render", data=data,
                                             headers={**AUTH, **sample["headers"]})
                await response.read()
                assert response.status == 200, response.status
                took.append((time.perf_counter() - started) * 1000)
            took.sort()
            print(f"{name:<13} median {statistics.median(took):5.2f} ms   "
                  f"p95 {took[int(len(took) * 0.95) - 1]:5.2f} ms   ({renders} renders)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renders", type=int, default=200)
    asyncio.run(measure(parser.parse_args().renders))


if __name__ == "__main__":
    main()
