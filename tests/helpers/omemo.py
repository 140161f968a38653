"""Driving ``omemo_receiver`` (an OMEMO client in a process of its own) from a test."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.helpers import PASSWORD
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.service import Gateway

ROOT = Path(__file__).resolve().parents[2]


class OmemoPeer:
    """One device of ``jid``: ``await start()`` returns once its keys are published and
    it is online; ``await message()`` is the next message it received."""

    def __init__(self, prosody: ProsodyServer, jid: str, password: str, store: Path,
                 *options: str) -> None:
        self._argv = [sys.executable, "-m", "tests.helpers.omemo_receiver", jid, password,
                      str(prosody.c2s_port), str(prosody.cert_file), str(store), *options]
        self._proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}

    async def start(self, timeout: float = 30.0) -> OmemoPeer:
        self._proc = await asyncio.create_subprocess_exec(
            *self._argv, cwd=ROOT, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        self.ready = await self.event("ready", timeout)
        return self

    async def event(self, kind: str, timeout: float = 20.0) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self._proc.stdout.readline()
                if not line:
                    raise AssertionError(f"the OMEMO client ended before a {kind!r} event")
                event: dict[str, Any] = json.loads(line)
                if event["event"] == kind:
                    return event
                if event["event"] == "error":
                    raise AssertionError(f"the OMEMO client failed: {event['error']}")

    async def next_event(self, timeout: float = 20.0) -> dict[str, Any]:
        """The next event, whatever it is (an ``error`` too)."""
        assert self._proc is not None and self._proc.stdout is not None
        async with asyncio.timeout(timeout):
            line = await self._proc.stdout.readline()
        if not line:
            raise AssertionError("the OMEMO client ended")
        event: dict[str, Any] = json.loads(line)
        return event

    async def message(self, timeout: float = 20.0) -> dict[str, Any]:
        return await self.event("message", timeout)

    async def send(self, to: str, body: str, version: str = "2",
                   readers: list[str] | None = None) -> dict[str, Any]:
        """Send ``body`` OMEMO-encrypted (``version`` "2" or "0.3") to ``to`` (a room:
        encrypted for its members ``readers``); the client's ``sent`` event."""
        assert self._proc is not None and self._proc.stdin is not None
        command: dict[str, Any] = {"send": to, "body": body, "version": version}
        if readers:
            command["readers"] = readers
        self._proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self._proc.stdin.drain()
        return await self.event("sent")

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


TWOMEMO = "urn:xmpp:omemo:2"

OLDMEMO = "eu.siacs.conversations.axolotl"

names = itertools.count()

def user(prosody: ProsodyServer, prefix: str) -> str:
    return prosody.register(f"{prefix}{next(names)}{secrets.token_hex(2)}", PASSWORD)

def state_secret(folder: Path) -> Path:
    path = folder / "secret"
    path.write_text(secrets.token_urlsafe(48))
    os.chmod(path, 0o600)
    return path

GatewayStarter = Callable[..., Awaitable[Gateway]]

PeerStarter = Callable[..., Awaitable[OmemoPeer]]

def stored_bytes(prosody: ProsodyServer, store: str = "") -> bytes:
    """Every data file of Prosody's (``store``: only those in folders named so)."""
    assert prosody.workdir is not None
    return b"".join(path.read_bytes() for path in (prosody.workdir / "data").rglob("*")
                    if path.is_file() and (not store or path.parent.name == store))

def secrets_part(text: str) -> bytes:
    return text.rsplit(" ", 1)[1].encode()
