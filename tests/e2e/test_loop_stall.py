"""The event loop keeps answering while the worst inputs of every front end run, and
while a reload compiles the templates (issue 19, findings 1 and 7).

The gateway runs in a process of its own against the real Prosody; another process asks
``/healthz`` every few milliseconds and times each answer, while bursts of requests go
in: the seed API (a text in a charset that decodes in quadratic time), templates
(discord, slack, github, gitlab, gitea, alertmanager, grafana) with texts made of one
markup character, ntfy with ``X-Markdown`` and long action lists, and signed webhooks.
Most requests carry a wrong password: the gateway does the work before it logs in.
Before the fix one discord request stalled the loop for seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import AccountFactory
from tests.helpers.grants import bearer, hex_hmac, secret_file, token_entry, toml
from xmpp_post.lab.prosody import ProsodyServer, free_port

# Seconds /healthz may take at worst: generous, the machine that runs the suite is shared
# (an idle gateway answers in milliseconds; the bug made it wait three seconds and more).
STALL = 0.5
GITHUB_SECRET = "gh-s3cret-stall"
# ntfy's longest text raised as far as a body goes
WORST_CASE_FLAGS = ("--ntfy-max-text", "65536")


@dataclass
class Served:
    """A gateway in its own process, and what it logged so far."""

    port: int
    log: list[str] = field(default_factory=list)
    exited: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_for(self, words: str, timeout: float = 60) -> None:
        """Until a line of the log holds ``words``."""
        async with asyncio.timeout(timeout):
            while not any(words in line for line in self.log):
                assert not self.exited, "the gateway exited: " + "".join(self.log)
                await asyncio.sleep(0.01)


@asynccontextmanager
async def served(prosody: ProsodyServer, config: Path, *args: str) -> AsyncIterator[
        tuple[Served, asyncio.subprocess.Process]]:
    """The gateway started with ``config`` and ``args``, its log read as it comes (a
    full pipe would stop it), stopped with SIGTERM at the end."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xmpp_post", "serve", "--config", str(config),
        "--domain", prosody.domain, "--listen", f"127.0.0.1:{port}",
        "--xmpp-server", f"127.0.0.1:{prosody.c2s_port}", "--ca-file", str(prosody.cert_file),
        *args, stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    gateway = Served(port)

    async def read_log() -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            gateway.log.append(line.decode())
        gateway.exited = True

    reader = asyncio.create_task(read_log())
    try:
        await gateway.wait_for(" listening url=")
        yield gateway, proc
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await reader


# A process of its own asks /healthz again and again (a thread of the test would wait
# for the test's own GIL), until its standard input closes; then it prints the seconds
# each answer took, as JSON (a failure, or no answer in 10 s, counts as 10 s).
PROBE = """
import http.client, json, sys, threading, time
done, latencies = threading.Event(), []
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
connection = None
while not done.is_set():
    started = time.perf_counter()
    try:
        connection = connection or http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]),
                                                              timeout=10)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        ok = response.status == 200
    except OSError:
        connection, ok = None, False
    took = time.perf_counter() - started
    latencies.append(took if ok else max(took, 10.0))
    time.sleep(0.005)
print(json.dumps(latencies))
"""


@asynccontextmanager
async def healthz_latency(port: int) -> AsyncIterator[list[float]]:
    """Time ``GET /healthz`` again and again while the block runs; the list holds each
    answer's seconds once it is done (an error counts as forever)."""
    latencies: list[float] = []
    prober = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROBE, str(port), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    try:
        await asyncio.sleep(0.2)  # it has started asking
        yield latencies
    finally:
        output, _ = await asyncio.wait_for(prober.communicate(b""), 60)
        latencies += json.loads(output)


def signed_github(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": f"d-{time.time_ns()}",
            "X-Hub-Signature-256": "sha256=" + hex_hmac(GITHUB_SECRET, body)}


def issue(body: str) -> dict[str, Any]:
    return {"action": "opened", "issue": {"number": 7, "title": body[:200], "body": body,
                                          "html_url": "https://forge.example/i/7"},
            "repository": {"full_name": "acme/kettle"}, "sender": {"login": "mallory"}}


def worst_requests(bob: str,
                   token: str) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """(method, path, body, headers) of the worst inputs known for each front end
    (``token``: the bot's, for the web page's render, which renders for proven senders)."""
    # The bot's token: a password given with HTTP Basic is proven by a login before any
    # work is done for it, and a token needs none, so every request below does its work
    caller = bearer(token)
    as_json = {**caller, "Content-Type": "application/json"}

    def templated(name: str, payload: Any, **headers: str) -> tuple[str, str, bytes,
                                                                   dict[str, str]]:
        return ("POST", f"/msg/{bob}?template={name}", json.dumps(payload).encode(),
                {**as_json, **headers})

    markdown = {**caller, "X-Markdown": "1"}
    requests = [
        ("POST", f"/msg/{bob}", ("é" * 30_000).encode("punycode"),
         {**caller, "Content-Type": "text/plain; charset=punycode"}),
        ("POST", f"/msg/{bob}", ("[" * 60_000).encode(),
         {**caller, "Content-Type": "text/plain"}),
        templated("discord", {"content": "[" * 1_000_000}),
        templated("discord", {"content": "![" * 120_000,
                              "embeds": [{"description": "**" * 100_000}]}),
        templated("slack", {"text": " " * 19_900 + "x"}),
        templated("slack", {"text": " " * 250_000 + "x"}),
        templated("slack", {"attachments": [{"text": "<" * 250_000}]}),
        templated("github", issue("[" * 250_000), **{"X-GitHub-Event": "issues"}),
        templated("github", issue("# a" + " " * 250_000 + "x"),
                  **{"X-GitHub-Event": "issues"}),
        templated("gitea", issue("~~" * 120_000), **{"X-Gitea-Event": "issues"}),
        templated("gitlab", {"object_kind": "note", "user": {"username": "m"},
                             "object_attributes": {"note": "__" * 120_000,
                                                   "noteable_type": "Issue"}}),
        templated("alertmanager", {"status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "x" * 100_000},
             "annotations": {"summary": " " * 200_000 + "x"}}]}),
        templated("grafana", {"status": "firing", "title": "\t" * 250_000 + "x",
                              "alerts": []}),
        ("POST", "/alerts", ("# a" + " " * 60_000 + "x").encode(), markdown),
        ("POST", "/alerts", ("![" * 30_000).encode(), markdown),
        ("POST", "/alerts", ("*a " * 20_000).encode(), markdown),
        ("POST", "/alerts", ("`" * 60_000).encode(), markdown),
        ("POST", "/", json.dumps({"topic": "alerts", "message": "hi",
                                  "actions": "view, '" + "\\'" * 12_000 + "'"}).encode(),
         as_json),
    ]
    for text in ("[" * 900_000, "![" * 120_000):
        body = json.dumps(issue(text)).encode()
        requests.append(("POST", "/hooks/github", body, signed_github(body)))
        requests.append(("POST", f"/templates/github/render?to={bob}", body,
                         {**bearer(token), "Content-Type": "application/json",
                          "X-GitHub-Event": "issues"}))
    requests.append(("POST", "/alerts", ("é" * 30_000).encode("punycode"),
                     {**caller, "Content-Type": "text/plain; charset=punycode"}))
    form = (b"--b\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\n"
            + b"a" * 60_000 + b"\x01\r\n--b--\r\n")  # within --max-body
    requests.append(("POST", f"/msg/{bob}", form,
                     {**caller, "Content-Type": "multipart/form-data; boundary=b"}))
    return requests


async def test_healthz_answers_at_once_under_a_burst_of_the_worst_inputs(
        prosody: ProsodyServer, account: AccountFactory, tmp_path: Path) -> None:
    bot, bob = account("bot"), account("bob")
    password = secret_file(tmp_path, "bot.password", bot.password + "\n")
    config = tmp_path / "gw.toml"
    token, entry = token_entry(bot.jid)
    config.write_text(toml({
        "accounts": {bot.jid: {"password_file": str(password)}},
        "tokens": {"page": entry},
        "webhooks": {"github": {"account": bot.jid, "to": [bob.jid], "verify": "github",
                                "secret_file": str(secret_file(tmp_path, "gh",
                                                               GITHUB_SECRET))}}}))
    requests = worst_requests(bob.local, token)
    async with served(prosody, config, *WORST_CASE_FLAGS) as (gateway, _), \
            aiohttp.ClientSession() as session:

        async def send(method: str, path: str, body: bytes, headers: dict[str, str]) -> int:
            async with session.request(method, gateway.url + path, data=body,
                                       headers=headers) as response:
                await response.read()
                return response.status

        async with healthz_latency(gateway.port) as latencies:
            for _ in range(2):
                statuses = await asyncio.gather(*(send(*request) for request in requests))
                assert all(status < 500 for status in statuses), statuses
    print(f"/healthz at worst {max(latencies):.3f} s over {len(latencies)} answers")
    assert len(latencies) >= 20, "the probe hardly ran"
    assert max(latencies) < STALL, (
        f"/healthz took up to {max(latencies):.3f} s (median "
        f"{sorted(latencies)[len(latencies) // 2]:.3f} s, {len(latencies)} answers)")


async def test_a_reload_compiles_the_templates_off_the_event_loop(
        prosody: ProsodyServer, account: AccountFactory, tmp_path: Path) -> None:
    bot = account("bot")
    password = secret_file(tmp_path, "bot.password", bot.password + "\n")
    folder = tmp_path / "templates"
    folder.mkdir()

    def write_templates(version: int) -> None:
        lines = "".join(f"{{% if payload.k{i} %}}{{{{ payload.k{i}|oneline|shorten({i}) }}}}"
                        f"{{{{ payload.v{i}|md_text }}}}{{% endif %}}\n" for i in range(40))
        for number in range(80):
            (folder / f"t{number}.j2").write_text(f"{{# version {version} #}}\n{lines}")

    write_templates(1)
    config = tmp_path / "gw.toml"
    config.write_text(toml({"accounts": {bot.jid: {"password_file": str(password)}}},
                           flat=f"template_dir = {json.dumps(str(folder))}"))
    async with served(prosody, config) as (gateway, proc):
        write_templates(2)  # a new source: nothing compiled is reused
        async with healthz_latency(gateway.port) as latencies:
            started = time.perf_counter()
            proc.send_signal(signal.SIGHUP)
            await gateway.wait_for(" reloaded ")
            took = time.perf_counter() - started
    print(f"the reload took {took:.3f} s; /healthz at worst {max(latencies):.3f} s")
    assert took > 2 * STALL, f"the reload took only {took:.3f} s: nothing was measured"
    assert max(latencies) < STALL, (
        f"/healthz took up to {max(latencies):.3f} s during a reload of {took:.3f} s")
