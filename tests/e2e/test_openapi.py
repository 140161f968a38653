"""The OpenAPI description is valid, true to the running gateway, and survives fuzzing.

schemathesis generates requests from the description and sends them to a real gateway
(the console command) in front of the real Prosody; every answer must be documented, in
the JSON error shape, and never a 5xx; afterwards the sender's session still works.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.helpers import PASSWORD, Client, ReceiverFactory
from xmpp_post import config
from xmpp_post.lab.prosody import ProsodyServer, free_port
from xmpp_post.service import Gateway

FUZZ_EXAMPLES = 150
NTFY_FUZZ_EXAMPLES = 25  # ntfy's nine operations share one parser: fewer examples each
# Every guessed webhook URL is a failed login of this address: fewer than the throttle's
# auth_failure_limit (5), or the address is locked for the operations after it.
HOOK_URL_FUZZ_EXAMPLES = 2
NTFY_MEMBERS = {"http", "code", "results"}
tried: dict[str, int] = {}


@pytest.fixture(scope="module")
def served(prosody: ProsodyServer, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[str, str]]:
    """A gateway run by the console command; yields (base URL, sender JID)."""
    sender = prosody.register("fuzzer", PASSWORD)
    log_path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    log_file = log_path.open("w")
    print(f"gateway log: {log_path}")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "xmpp_post", "serve", "--domain", prosody.domain,
         "--listen", f"127.0.0.1:{port}", "--xmpp-server", f"127.0.0.1:{prosody.c2s_port}",
         "--ca-file", str(prosody.cert_file), "--ack-timeout", "5"],
        stderr=log_file, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("the gateway did not start")
            time.sleep(0.05)
    yield url, sender
    proc.terminate()
    proc.wait(timeout=30)
    log_file.close()
    log = log_path.read_text()
    assert proc.returncode == 0
    assert PASSWORD not in log
    assert "Traceback" not in log, log[-3000:]


def _is_ntfy(operation: Any) -> bool:
    return "ntfy" in (operation.definition.raw.get("tags") or ())


def test_fuzzed_requests_get_documented_answers(served: tuple[str, str]) -> None:
    # Driven through schemathesis's Python API (its pytest plugin lags behind pytest 9).
    api = schemathesis.openapi.from_url(served[0] + "/openapi.json")
    token = base64.b64encode(f"{served[1]}:{PASSWORD}".encode()).decode()

    def exercise(case: Any) -> None:
        key = f"{case.method} {case.path}"
        tried[key] = tried.get(key, 0) + 1
        case.headers = {**(case.headers or {}), "Authorization": f"Basic {token}"}
        response = case.call(base_url=served[0], timeout=15)
        assert response.status_code < 500, (response.status_code, response.text)
        if response.status_code >= 400:  # the parser's refusals too (a header too long)
            assert response.text, (response.status_code, response.headers)
            doc = json.loads(response.text)
            # ntfy's routes add their members (a fuzzed topic such as "v1" may also be
            # answered by the router, in the gateway's own shape)
            allowed = NTFY_MEMBERS if _is_ntfy(case.operation) else set()
            assert {"error", "message"} <= set(doc) <= {"error", "message", *allowed}, doc
        case.validate_response(response, excluded_checks=[
            schemathesis.checks.positive_data_acceptance,  # valid by schema, may be a bad JID
            schemathesis.checks.ignored_auth,  # we send real credentials on purpose
            # "Invalid" by schema is often still meaningful here: any text/plain body is a
            # string, and an invalid recipient among several is a 207 entry, not a 400.
            schemathesis.checks.negative_data_rejection,
        ])

    operations = [result.ok() for result in api.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 7
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            examples = NTFY_FUZZ_EXAMPLES if _is_ntfy(operation) else FUZZ_EXAMPLES
            if operation.definition.raw.get("operationId") == "hookUrl":
                examples = HOOK_URL_FUZZ_EXAMPLES
            run = settings(max_examples=examples, deadline=None, database=None,
                           suppress_health_check=list(HealthCheck))(
                given(case=operation.as_strategy(generation_mode=mode))(exercise))
            try:
                run()
            except Unsatisfiable:  # nothing invalid to generate (no parameters or body)
                assert mode is schemathesis.GenerationMode.NEGATIVE
    assert sum(tried.values()) >= len(operations)


async def test_session_still_works_after_fuzzing(
        served: tuple[str, str], http: Client, receiver: ReceiverFactory,
        prosody: ProsodyServer) -> None:
    print(f"\nschemathesis inputs per operation: {tried} (total {sum(tried.values())})")
    from tests.helpers import Account

    bob = Account(prosody.register("fuzzcheck", PASSWORD), PASSWORD)
    inbox = await receiver(bob)
    gateway = Gateway.__new__(Gateway)
    gateway.config = config.load({"domain": ["localhost"]}, environ={})
    gateway.port = int(served[0].rsplit(":", 1)[1])
    reply = await http.post(gateway, "/msg/fuzzcheck", "still fine",
                            user=served[1], password=PASSWORD)
    assert reply.status == 201, reply.text
    assert (await asyncio.wait_for(inbox.next(), 10)).body == "still fine"
