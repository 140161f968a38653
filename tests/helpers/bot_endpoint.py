"""A bot's webhook for the tests: a real HTTP server on loopback that records each
delivery, checks its signature with a Standard Webhooks verifier written here from the
specification (not the gateway's signer), and answers as the test says; and the files
of a gateway configured with one bot."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from xmpp_post.lab.prosody import free_port

Answer = Callable[["Delivery"], web.Response]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks: the key is the base64 after ``whsec_``; the signed content is
    ``{id}.{timestamp}.{body}``; the header holds space-separated ``v1,<base64>``."""
    key = base64.b64decode(secret.split("_", 1)[1])
    content = b"%s.%s.%s" % (headers["webhook-id"].encode(),
                             headers["webhook-timestamp"].encode(), body)
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[1] for part in headers["webhook-signature"].split()
               if part.startswith("v1,")]
    return any(hmac.compare_digest(expected, sig) for sig in offered)


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int = 0  # what the endpoint answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


def plain(text: str) -> Answer:
    return lambda _d: web.Response(text=text, content_type="text/plain")


def nothing(_d: Delivery) -> web.Response:
    return web.Response(status=204)


@dataclass
class Endpoint:
    """``await Endpoint(secret).start()``; ``answer`` decides each answer (default 204)."""

    secret: str
    answer: Answer = nothing
    port: int = field(default_factory=free_port)
    tries: list[Delivery] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/xmpp"

    @property
    def delivered(self) -> list[Delivery]:
        """The tries answered 2xx, in order."""
        return [d for d in self.tries if 200 <= d.status < 300]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        delivery = Delivery(headers, body, verify(self.secret, headers, body))
        response = self.answer(delivery)
        delivery.status = response.status
        async with self._arrived:
            self.tries.append(delivery)
            self._arrived.notify_all()
        return response

    async def wait_delivered(self, count: int, timeout: float = 30.0) -> list[Delivery]:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(
                lambda: len(self.delivered) >= count), timeout)
        return self.delivered

    async def wait_tries(self, count: int, timeout: float = 30.0) -> None:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(
                lambda: len(self.tries) >= count), timeout)

    async def start(self) -> Endpoint:
        app = web.Application()
        app.router.add_post("/xmpp", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def private_file(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    os.chmod(path, 0o600)
    return path


def bot_config(folder: Path, jid: str, password: str, url: str, secret: str,
               **bot: Any) -> Path:
    """A configuration file with the account ``jid`` (its ``encrypt``, if
    ``account_encrypt`` is given) and the bot ``b`` on it."""
    account_encrypt = bot.pop("account_encrypt", None)
    private_file(folder / "bot.password", password)
    private_file(folder / "bot.whsec", secret)
    lines = [f'[accounts."{jid}"]', f'password_file = "{folder / "bot.password"}"',
             *([f'encrypt = "{account_encrypt}"'] if account_encrypt else []),
             "[bots.b]", f'account = "{jid}"', f'url = "{url}"',
             f'secret_file = "{folder / "bot.whsec"}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in bot.items()]
    path = folder / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path
