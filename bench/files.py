"""The gateway's memory while it takes files: ``python -m bench.files [--size-mib 20]
[--concurrency 3] [--rounds 3] [--ntfy]``.

Starts a throwaway Prosody whose upload service (``mod_http_file_share`` over HTTPS)
takes files of up to 1 GiB, and the gateway as its own process (``python -m xmpp_post
serve`` of this checkout). One small file first (the sender's session opens, the upload
service is found, the HTTPS client is made); then, each round, ``--concurrency``
clients each post a file of ``--size-mib`` MiB at once (``multipart/form-data`` to
``/msg``; ``--ntfy``: a ``PUT /<topic>`` with a file name), streamed from disk. The
gateway's peak resident memory during the round (``VmHWM``, reset before each round
through ``/proc/<pid>/clear_refs``) is compared with its resident memory before it:
the growth must stay well under one file's size, since files are spooled to disk and
streamed from there, never held whole. Every file is downloaded again and compared
(SHA-256), and the spool must be empty afterwards. Run on demand only: never as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import ssl
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.procstat import rss_kib
from xmpp_post.lab.instances import GatewayProcess
from xmpp_post.lab.prosody import ProsodyServer

PASSWORD = "bench-files"
MIB = 1 << 20


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux 4.0+)


def make_file(folder: Path, name: str, size: int) -> tuple[Path, str]:
    path = folder / name
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, MIB))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return path, digest.hexdigest()


async def post(session: aiohttp.ClientSession, url: str, auth: str, path: Path,
               ntfy: bool) -> dict[str, object]:
    with path.open("rb") as handle:
        if ntfy:
            async with session.put(f"{url}/bob", data=handle, headers={
                    "Authorization": auth, "Filename": path.name}) as answer:
                body = await answer.json()
                assert answer.status == 200, body
                attachment = body["attachment"]
                assert isinstance(attachment, dict)
                return attachment
        form = aiohttp.FormData()
        form.add_field("body", f"the file {path.name}")
        form.add_field("file", handle, filename=path.name,
                       content_type="application/octet-stream")
        async with session.post(f"{url}/msg/bob", data=form,
                                headers={"Authorization": auth}) as answer:
            body = await answer.json()
            assert answer.status == 201, body
            files = body["files"]
            assert isinstance(files, list)
            return dict(files[0])


async def digest_of(session: aiohttp.ClientSession, url: str, ca_file: Path) -> str:
    digest = hashlib.sha256()
    context = ssl.create_default_context(cafile=str(ca_file))
    async with session.get(url, ssl=context) as got:
        async for chunk in got.content.iter_chunked(MIB):
            digest.update(chunk)
    return digest.hexdigest()


async def measure(server: ProsodyServer, gateway: GatewayProcess, folder: Path,
                  size: int, concurrency: int, rounds: int, ntfy: bool) -> None:
    auth = aiohttp.encode_basic_auth(f"alice@{server.domain}", PASSWORD)
    files = [make_file(folder, f"file{n}.bin", size) for n in range(concurrency)]
    small, _ = make_file(folder, "warm-up.bin", 4096)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await post(session, gateway.url, auth, small, ntfy)
        print(f"{concurrency} files of {size / MIB:g} MiB at once, "
              f"{'ntfy PUT' if ntfy else 'multipart/form-data'}; gateway pid {gateway.pid}")
        print("round  before MiB  peak MiB  growth MiB  after MiB  seconds")
        for number in range(1, rounds + 1):
            before = rss_kib(gateway.pid)
            reset_peak(gateway.pid)
            started = time.perf_counter()
            sent = await asyncio.gather(*(post(session, gateway.url, auth, path, ntfy)
                                          for path, _ in files))
            seconds = time.perf_counter() - started
            peak, after = peak_kib(gateway.pid), rss_kib(gateway.pid)
            print(f"{number:5d}  {before / 1024:10.1f}  {peak / 1024:8.1f}  "
                  f"{(peak - before) / 1024:10.1f}  {after / 1024:9.1f}  {seconds:7.2f}")
            for (_, expected), file in zip(files, sent, strict=True):
                assert await digest_of(session, str(file["url"]), server.cert_file) == \
                    expected, "a downloaded file differs from the one sent"
    print("every file downloaded again: the same bytes (SHA-256)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ntfy", action="store_true",
                        help="PUT each file to ntfy's /<topic> instead of /msg")
    args = parser.parse_args()
    size = int(args.size_mib * MIB)
    server = ProsodyServer(muc=False, file_share_limit=1 << 30,
                           file_share_quota=1 << 40)
    server.start()
    with tempfile.TemporaryDirectory(prefix="xmpp-post-bench-files-") as work:
        folder = Path(work)
        spool = folder / "spool"
        spool.mkdir()
        gateway = GatewayProcess(
            ["--domain", server.domain, "--xmpp-server", f"127.0.0.1:{server.c2s_port}",
             "--ca-file", str(server.cert_file), "--spool-dir", str(spool),
             "--max-file-size", str(max(size, MIB) * 2), "--no-uvloop"],
            folder / "gateway.log")
        try:
            server.register("alice", PASSWORD)
            server.register("bob", PASSWORD)
            gateway.start()
            asyncio.run(measure(server, gateway, folder, size, args.concurrency,
                                args.rounds, args.ntfy))
            left = [entry.name for process in spool.iterdir() for entry in process.iterdir()
                    if entry.name != "lock"]
            print(f"spool after the rounds: {len(left)} request folders")
        finally:
            gateway.stop()
            server.close()


if __name__ == "__main__":
    main()
