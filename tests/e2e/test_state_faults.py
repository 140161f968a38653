"""The state directory's disk failing under a running gateway (real Prosody, a receiving
client): the disk full or the files read-only. Requests that need the store get 503
``state_unavailable`` with Retry-After and nothing is sent, ``/readyz`` says degraded,
nothing answers 500, and it recovers by itself once the disk is writable again (within
Retry-After: after a failed write the store pauses new claims that long).

Three ways to fail, each a real write failure the kernel or SQLite reports:

* ``page_limit``: SQLite's own ``PRAGMA max_page_count`` at the database's size:
  SQLITE_FULL, exactly as a full disk is reported (runs anywhere);
* ``full_tmpfs``: the directory on a tmpfs of 2 MiB, filled up by another file: ENOSPC
  (needs the right to mount, i.e. root);
* ``immutable``: ``chattr +i`` on the database and its WAL: the kernel refuses every
  write, even through descriptors already open, even root's (EPERM; needs
  CAP_LINUX_IMMUTABLE and a filesystem with the flag). ``chmod`` would not do: root
  writes through it, and an open descriptor keeps its rights anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory
from xmpp_post.service import Gateway

KEY = "Idempotency-Key"
NO_LIMIT = 1_073_741_823  # SQLite's largest max_page_count


@dataclass
class Fault:
    state_dir: Path
    break_: Callable[[Gateway], Awaitable[None]]
    repair: Callable[[Gateway], Awaitable[None]]
    reason: str  # what /readyz says


def _page_limit(tmp_path: Path) -> Iterator[Fault]:
    def limit(pages: int | None) -> Callable[[Gateway], Awaitable[None]]:
        def run(db: sqlite3.Connection) -> None:  # on the connection requests write on
            at = db.execute("PRAGMA page_count").fetchone()[0] if pages is None else pages
            db.execute(f"PRAGMA max_page_count = {at}")

        async def apply(gateway: Gateway) -> None:
            assert gateway.state is not None
            gateway.state.write(run, proof=False)

        return apply

    yield Fault(tmp_path / "state", limit(None), limit(NO_LIMIT), "the disk is full")



def _full_tmpfs(tmp_path: Path) -> Iterator[Fault]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                              str(mount)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    filler = mount / "filler"

    async def break_(_gateway: Gateway) -> None:
        with filler.open("ab", buffering=0) as out:
            for size in (65536, 4096, 512, 1):
                with contextlib.suppress(OSError):
                    while True:
                        out.write(b"\0" * size)

    async def repair(_gateway: Gateway) -> None:
        filler.unlink()

    try:
        yield Fault(mount / "state", break_, repair, "the disk is full")
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _immutable(tmp_path: Path) -> Iterator[Fault]:
    probe = tmp_path / "probe"
    probe.touch()
    tried = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, text=True)
    if tried.returncode != 0:
        pytest.skip(f"chattr +i is refused here: {tried.stderr.strip()}")
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    state_dir = tmp_path / "state"
    files = [state_dir / "state.db", state_dir / "state.db-wal"]

    async def chattr(flag: str) -> None:
        await asyncio.to_thread(subprocess.run, ["chattr", flag, *map(str, files)],
                                check=True)

    async def break_(_gateway: Gateway) -> None:
        await chattr("+i")

    async def repair(_gateway: Gateway) -> None:
        await chattr("-i")

    try:
        yield Fault(state_dir, break_, repair, "an I/O error")
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], check=False,
                       capture_output=True)


FAULTS = {"page_limit": _page_limit, "full_tmpfs": _full_tmpfs, "immutable": _immutable}


@pytest.fixture(params=sorted(FAULTS))
def fault(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fault]:
    yield from FAULTS[request.param](tmp_path)


async def test_the_store_failing_is_503_degraded_never_500_and_recovers(
        fault: Fault, start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    gateway = await start_gateway(state_dir=str(fault.state_dir), retry_after="2")
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    sent: list[str] = []

    async def post(key: str, body: str) -> tuple[int, dict[str, str], str, bool]:
        reply = await http.post(gateway, f"/msg/{bob.local}", body, sender=alice,
                                headers={KEY: key})
        assert reply.status in (201, 503), reply.text
        replayed = reply.headers.get("Idempotent-Replayed") == "true"
        if reply.status == 201 and not replayed:
            sent.append(body)
        return reply.status, dict(reply.headers), reply.text, replayed

    assert (await post("before", "before"))[0] == 201
    await fault.break_(gateway)
    answered = []  # (key, body) answered 201 after the failure began
    for n in range(2000):
        status, headers, text, _ = await post(f"during-{n}", f"during {n}")
        if status == 503:
            break
        answered.append((f"during-{n}", f"during {n}"))
    else:
        pytest.fail("the store never failed")
    assert '"error": "state_unavailable"' in text and headers["Retry-After"] == "2"
    refused = (f"during-{n}", f"during {n}")
    for _ in range(3):  # still refused, and nothing sent
        assert (await post(*refused))[0] == 503
    async with http.session.get(gateway.url + "/readyz") as ready:
        assert ready.status == 200
        health = await ready.json()
    assert health["status"] == "degraded" and fault.reason in health["reason"], health
    status, _, _, replayed = await post("before", "before")  # kept answers still replay
    assert status == 201 and replayed
    plain = await http.post(gateway, f"/msg/{bob.local}", "no key", sender=alice)
    assert plain.status == 201  # a request that needs no store is served
    sent.append("no key")

    await fault.repair(gateway)
    for _ in range(100):  # as a load balancer would: ready again within Retry-After
        async with http.session.get(gateway.url + "/readyz") as ready:
            if (await ready.json())["status"] == "ready":
                break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("/readyz stayed degraded")
    status, _, _, replayed = await post(*refused)
    assert status == 201 and not replayed  # no restart: the next request works
    status, _, _, replayed = await post(*refused)
    assert status == 201 and replayed
    # Every answer given while the disk filled was kept but the one whose write failed
    # (its message had gone: it keeps its 201, and the failure is logged).
    not_kept = 0
    for key, body in answered:
        status, _, _, replayed = await post(key, body)
        assert status == 201
        not_kept += not replayed
    assert not_kept <= 1
    received = sorted(m.body for m in await inbox.collect(len(sent)))
    assert received == sorted(sent)


def test_a_full_disk_at_start_names_the_directory(tmp_path: Path) -> None:
    """Before serving: a directory the gateway cannot create is a configuration error."""
    from xmpp_post import config
    from xmpp_post.errors import ConfigError
    from xmpp_post.metrics import Metrics
    from xmpp_post.state_setup import open_state

    blocked = tmp_path / "file"
    blocked.write_text("")
    settings = config.load({"domain": ["example.org"], "state_dir": str(blocked / "state")},
                           environ={})
    with pytest.raises(ConfigError) as caught:
        open_state(settings, Metrics())
    assert caught.value.setting == "state_dir"
    assert os.strerror(errno.ENOTDIR) in caught.value.problem
