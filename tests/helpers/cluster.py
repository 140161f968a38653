"""Helpers for the tests of several instances: a shared secret, gateways sharing Redis
(in process, or as processes behind HAProxy running deploy/haproxy.cfg), and a load of
senders whose every accepted message is checked at the receiver."""

from __future__ import annotations

import asyncio
import collections
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import Account, Client, basic, gateway_config
from xmpp_post.lab.haproxy import HaproxyServer
from xmpp_post.lab.instances import GatewayProcess
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver
from xmpp_post.service import Gateway

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"


def secret_file(folder: Path) -> Path:
    """A fresh state secret (so each test has its own keys in the shared Redis)."""
    path = folder / "state-secret"
    path.write_text(secrets.token_urlsafe(48) + "\n")
    path.chmod(0o600)
    return path


@asynccontextmanager
async def shared_gateways(prosody: ProsodyServer, count: int, redis_url: str, secret: Path,
                          **overrides: Any) -> AsyncIterator[list[Gateway]]:
    """``count`` in-process gateways sharing the state in Redis."""
    gateways = [Gateway(gateway_config(prosody, redis_url=redis_url,
                                       state_secret_file=str(secret), **overrides))
                for _ in range(count)]
    try:
        for gateway in gateways:
            await gateway.start()
        yield gateways
    finally:
        for gateway in gateways:
            await gateway.stop()


async def post(http: Client, base_url: str, path: str, body: str, sender: Account,
               headers: dict[str, str] | None = None) -> Any:
    return await http.request("POST", base_url + path, data=body, headers={
        "Authorization": basic(sender.jid, sender.password), "Content-Type": "text/plain",
        **(headers or {})})


@dataclass
class Cluster:
    """Gateway processes behind HAProxy, sharing one Redis."""

    haproxy: HaproxyServer
    instances: list[GatewayProcess]

    def busiest(self) -> GatewayProcess:
        """The instance that has handled the most message requests (from its log)."""
        def served(instance: GatewayProcess) -> int:
            return instance.log_file.read_text().count(" request method=POST")
        return max(self.instances, key=served)

    def name_of(self, instance: GatewayProcess) -> str:
        return f"gw{self.instances.index(instance) + 1}"


@asynccontextmanager
async def cluster(prosody: ProsodyServer, folder: Path, redis_url: str, *, count: int = 3,
                  extra: list[str] | None = None) -> AsyncIterator[Cluster]:
    secret = secret_file(folder)
    args = ["--domain", prosody.domain, "--xmpp-server", f"127.0.0.1:{prosody.c2s_port}",
            "--ca-file", str(prosody.cert_file), "--connect-timeout", "5", "--ack-timeout", "5",
            "--redis-url", redis_url, "--state-secret-file", str(secret), "--proxy-protocol",
            "--trusted-proxy", "127.0.0.1/32",  # HAProxy's address, as deploy/haproxy.cfg says
            *(extra or [])]
    instances = [GatewayProcess(args, folder / f"gw{n + 1}.log") for n in range(count)]
    haproxy = HaproxyServer(HAPROXY_CFG.read_text(), [
        (f"gw{n + 1}", "127.0.0.1", instance.port) for n, instance in enumerate(instances)])
    try:
        for instance in instances:
            instance.launch()
        for instance in instances:
            await asyncio.to_thread(instance.ready)
        await asyncio.to_thread(haproxy.start)
        await asyncio.to_thread(haproxy.wait_for, {f"gw{n + 1}": "UP" for n in range(count)})
        yield Cluster(haproxy, instances)
    finally:
        haproxy.close()
        await asyncio.gather(*(asyncio.to_thread(i.stop, 10) for i in instances))


@dataclass
class Load:
    """Senders posting unique bodies through ``url``, each waiting for its answer."""

    http: Client
    url: str
    senders: list[Account]
    to: str
    accepted: list[str] = field(default_factory=list)
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    accepted_per_sender: collections.Counter[str] = field(default_factory=collections.Counter)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _send(self, sender: Account) -> None:
        serial = 0
        while not self.stop.is_set():
            body = f"{sender.local} #{serial}"
            serial += 1
            try:
                reply = await post(self.http, self.url, f"/msg/{self.to}", body, sender)
                status = str(reply.status)
            except aiohttp.ClientError as exc:
                status = type(exc).__name__
            if status == "201":
                self.accepted.append(body)
                self.accepted_per_sender[sender.local] += 1
            else:
                self.refused[status] += 1
                await asyncio.sleep(0.05)  # a polite client backs off a little

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Load]:
        tasks = [asyncio.create_task(self._send(sender)) for sender in self.senders]
        try:
            yield self
        finally:
            self.stop.set()
            await asyncio.gather(*tasks)

    def snapshot(self) -> dict[str, int]:
        return {s.local: self.accepted_per_sender[s.local] for s in self.senders}


async def received_exactly(inbox: Receiver, bodies: list[str], timeout: float = 15) -> None:
    """Every body arrives, and none twice."""
    seen: collections.Counter[str] = collections.Counter()
    missing = set(bodies)
    while missing:
        body = (await inbox.next(timeout=timeout)).body
        seen[body] += 1
        missing.discard(body)
    await asyncio.sleep(0.3)  # a duplicate would be right behind
    for message in inbox.pending():
        seen[message.body] += 1
    assert [body for body, n in seen.items() if n > 1] == []
