"""The web front with the XMPP side faked: the page and its headers, the template
endpoints (listing, render) and the status for admins."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.helpers.grants import secret_file, token_entry, toml
from xmpp_post import config, logs
from xmpp_post.config.live import LiveConfig
from xmpp_post.errors import ConfigError, LoginRefused
from xmpp_post.fronts.web import web_page as page
from xmpp_post.fronts.web import web_render as render
from xmpp_post.fronts.web.web_status import LogTail
from xmpp_post.service import web_app
from xmpp_post.templates import TemplateSet
from xmpp_post.testing import FakeRelay

Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]
Make = Callable[..., Awaitable[tuple[Client, FakeRelay]]]
ALICE = "alice@example.org"
ACCOUNT = "alerts@example.org"
STATIC = Path(page.__file__).parent / "static"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


PASSWORD = "alice-secret-pw"
AUTH = basic(ALICE, PASSWORD)
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    """``await make(file_text="", **settings)``: a client of the app and its fake relay;
    ``tokens`` are entries of [tokens] sending as ACCOUNT."""
    clients: list[Client] = []

    async def build(tokens: dict[str, dict[str, Any]] | None = None,
                    **settings: Any) -> tuple[Client, FakeRelay]:
        path = None
        if tokens:
            pw = secret_file(tmp_path, "pw", "hunter2")
            path = tmp_path / "gw.toml"
            path.write_text(toml({"accounts": {ACCOUNT: {"password_file": str(pw)}},
                                  "tokens": tokens}))
        cfg = config.load({"domain": ["example.org"], **settings}, environ={},
                          config_file=path)
        relay = FakeRelay()
        client: Client = TestClient(TestServer(web_app(cfg, relay, live=LiveConfig(cfg))))
        await client.start_server()
        clients.append(client)
        return client, relay

    yield build
    for client in clients:
        await client.close()


# ---- The page ---------------------------------------------------------------------------

def _check_headers(resp: aiohttp.ClientResponse) -> None:
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_page_and_its_files_with_their_security_headers(make: Make) -> None:
    client, _ = await make()
    resp = await client.get("/msg/")
    assert resp.status == 200 and resp.content_type == "text/html"
    _check_headers(resp)
    assert "<title>xmpp-post</title>" in await resp.text()
    for name, kind in [("app.js", "text/javascript"), ("styling.js", "text/javascript"),
                       ("style.css", "text/css"), ("icon.svg", "image/svg+xml")]:
        resp = await client.get(f"/msg/static/{name}")
        assert (resp.status, resp.content_type) == (200, kind), name
        _check_headers(resp)
        again = await client.get(f"/msg/static/{name}",
                                 headers={"If-None-Match": resp.headers["ETag"]})
        assert again.status == 304 and await again.read() == b""
    for missing in ("nope.js", "index.html", "..%2Fpage.py"):
        resp = await client.get(f"/msg/static/{missing}")
        assert resp.status == 404 and set(await resp.json()) == {"error", "message"}, missing
    resp = await client.get("/", allow_redirects=False)  # ntfy's "/", as it was
    assert resp.status == 405 and resp.headers["Allow"] == "OPTIONS, POST, PUT"
    client, _ = await make(ntfy=False)
    resp = await client.get("/", allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (302, "/msg/")


async def test_web_off_leaves_the_template_api(make: Make) -> None:
    client, _ = await make(web=False)
    for path in ("/msg/", "/msg/static/app.js", "/web/capabilities", "/web/status"):
        resp = await client.get(path, headers=AUTH)
        assert resp.status in (404, 405), path
    assert (await client.get("/", allow_redirects=False)).status == 405  # ntfy's
    assert (await client.get("/templates")).status == 200


async def test_at_the_root_base_path(make: Make) -> None:
    client, _ = await make(base_path="/", ntfy=False)
    assert (await client.get("/")).content_type == "text/html"
    assert (await client.get("/static/app.js")).status == 200
    assert (await (await client.get("/web/capabilities")).json())["base_path"] == "/"


async def test_capabilities_show_only_what_exists(make: Make) -> None:
    client, _ = await make(admin=[ALICE])
    resp = await client.get("/web/capabilities")
    _check_headers(resp)
    assert await resp.json() == {"base_path": "/msg",
                                 "types": ["chat", "normal", "headline", "groupchat"],
                                 "send": {"files": True, "encrypt": True}, "status": True}


def test_the_page_has_no_inline_code_and_writes_no_html() -> None:
    html = (STATIC / "index.html").read_text()
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script type="module" src="static/app.js">']
    assert re.search(r"<script[^>]*>\s*[^<\s]", html) is None  # nothing between the tags
    assert re.search(r"<style|\sstyle=|\son[a-z]+=|javascript:", html, re.I) is None
    scripts = sorted(STATIC.glob("*.js"))
    assert len(scripts) >= 5
    for path in scripts:
        name, code = path.name, path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                     "eval(", "new Function", "setAttribute(\"on", "localStorage",
                     "sessionStorage", "document.cookie", "indexedDB"):
            assert sink not in code, (name, sink)
    for label in re.findall(r'<label for="([^"]+)"', html):
        assert f'id="{label}"' in html, label
    fields = re.findall(r'<(?:input|select|textarea)\b[^>]*\bid="([^"]+)"', html)
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    radios = set(re.findall(r'<input type="radio"[^>]*>', html))
    assert len(radios) == 2 and set(fields) <= labelled  # radios sit inside their labels


# ---- Templates --------------------------------------------------------------------------

def test_every_built_in_has_a_sample_that_renders() -> None:
    templates = TemplateSet.load(None)
    builtins = {name for name in templates.names() if templates.info(name).builtin}
    assert set(render.samples()) == builtins
    for name, sample in render.samples().items():
        headers = {key.lower(): value for key, value in sample["headers"].items()}
        rendered = templates.render_sync(name, sample["payload"], headers, {})
        assert rendered.body and not rendered.skipped, name


async def test_the_listing_needs_no_credentials(make: Make, tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "deploy.j2").write_text("{# Deploys. #}\nDeployed {{ payload.v }}\n")
    client, _ = await make(template_dir=str(folder))
    resp = await client.get("/templates")
    _check_headers(resp)
    listed = {entry["name"]: entry for entry in (await resp.json())["templates"]}
    assert listed["deploy"] == {"name": "deploy", "description": "Deploys.", "builtin": False,
                                "reply": "json", "sample": None}
    assert listed["github"]["sample"]["headers"] == {"X-GitHub-Event": "push"}
    assert listed["slack"]["reply"] == "slack"


async def test_a_render_shows_the_message_and_stanza_and_sends_nothing(make: Make) -> None:
    client, relay = await make()
    sample = render.samples()["github"]
    resp = await client.post("/templates/github/render", data=json.dumps(sample["payload"]),
                             headers={**AUTH, **JSON, **sample["headers"]})
    assert resp.status == 200, await resp.text()
    _check_headers(resp)
    result = await resp.json()
    assert result["template"] == "github" and not result["skipped"]
    assert result["body"].startswith("*alice* pushed 3 commits")
    [message] = result["messages"]
    assert message["to"] == ALICE and message["type"] == "chat"  # to the sender by default
    assert message["stanza"].startswith(f'<message type="chat" to="{ALICE}"')
    assert relay.sent == [] and [s.jid for s in relay.logins] == [ALICE]


async def test_a_render_to_recipients_with_the_message_fields(make: Make) -> None:
    client, _ = await make()
    resp = await client.post(
        "/templates/discord/render?to=bob&to=not%20a%20jid&subject=Hi&type=normal",
        data=json.dumps({"content": "<img src=x onerror=alert(1)> & more"},),
        headers={**AUTH, **JSON})
    result = await resp.json()
    assert result["subject"] == "Hi" and result["body"].startswith("<img src=x")
    ok, bad = result["messages"]
    assert ok["to"] == "bob@example.org" and ok["type"] == "normal"
    assert "<body>&lt;img src=x onerror=alert(1)&gt; &amp; more" in ok["stanza"]
    assert "<subject>Hi</subject>" in ok["stanza"]
    assert bad["status"] == 400 and bad["error"] == "invalid_jid"


async def test_render_refusals(make: Make, tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "broken.j2").write_text("{# Fails on line 3. #}\nfine\n{{ 1 // payload.zero }}\n")
    (folder / "quiet.j2").write_text("{% do skip() %}")
    client, relay = await make(template_dir=str(folder), max_template_body="200")
    post = client.post
    resp = await post("/templates/github/render", data="{}", headers=JSON)
    assert resp.status == 401
    resp = await post("/templates/nope/render", data="{}", headers={**AUTH, **JSON})
    assert (resp.status, (await resp.json())["error"]) == (404, "unknown_template")
    resp = await post("/templates/broken/render", data='{"zero": 0}', headers={**AUTH, **JSON})
    error = await resp.json()
    assert resp.status == 422 and error["error"] == "template_error"
    assert "line 3" in error["message"] and "ZeroDivisionError" in error["message"]
    resp = await post("/templates/quiet/render", data="{}", headers={**AUTH, **JSON})
    assert await resp.json() == {"template": "quiet", "skipped": True, "subject": None,
                                 "body": None, "messages": []}
    resp = await post("/templates/github/render", data="{", headers={**AUTH, **JSON})
    assert (resp.status, (await resp.json())["error"]) == (400, "invalid_json")
    resp = await post("/templates/github/render", data="x", headers={**AUTH})
    assert resp.status == 415
    resp = await post("/templates/github/render", data=json.dumps({"a": "x" * 300}),
                      headers={**AUTH, **JSON})
    assert resp.status == 413  # max_template_body, as for a templated send
    relay.fail = LoginRefused("the XMPP server rejected the credentials")
    resp = await post("/templates/github/render", data="{}", headers={**AUTH, **JSON})
    assert resp.status == 401 and relay.sent == []


async def test_a_token_renders_within_its_scope(make: Make) -> None:
    token, entry = token_entry(ACCOUNT, to=["ops@example.org"], template="grafana")
    client, relay = await make(tokens={"grafana": entry})
    bearer = {"Authorization": f"Bearer {token}", **JSON}
    payload = json.dumps(render.samples()["grafana"]["payload"])
    resp = await client.post("/templates/github/render", data=payload, headers=bearer)
    assert (resp.status, (await resp.json())["error"]) == (403, "template_not_allowed")
    resp = await client.post("/templates/grafana/render?to=eve", data=payload, headers=bearer)
    assert (resp.status, (await resp.json())["error"]) == (403, "recipient_not_allowed")
    resp = await client.post("/templates/grafana/render", data=payload, headers=bearer)
    assert resp.status == 200 and (await resp.json())["messages"][0]["to"] == ACCOUNT
    assert relay.logins == []  # the gateway holds the account's password: no login needed


# ---- Status ------------------------------------------------------------------------------

async def test_the_status_is_for_admins_only(make: Make) -> None:
    token, entry = token_entry(ACCOUNT)
    other, other_entry = token_entry(ACCOUNT)
    client, relay = await make(admin=[ALICE, "ops"], tokens={"ops": entry, "ci": other_entry})
    assert (await client.get("/web/status")).status == 401
    for headers in (basic("bob@example.org", "pw"), {"Authorization": f"Bearer {other}"}):
        resp = await client.get("/web/status", headers=headers)
        assert (resp.status, (await resp.json())["error"]) == (403, "not_admin")
    relay.fail = LoginRefused("the XMPP server rejected the credentials")
    assert (await client.get("/web/status", headers=AUTH)).status == 401  # proven first
    relay.fail = None
    for headers in (AUTH, {"Authorization": f"Bearer {token}"}):
        resp = await client.get("/web/status", headers=headers)
        assert resp.status == 200, await resp.text()
        _check_headers(resp)
    assert relay.sent == []


async def test_the_status_shows_sessions_refusals_and_errors(make: Make) -> None:
    client, _ = await make(admin=[ALICE])
    await client.post("/msg/bob", data="secret text", headers={**AUTH,
                                                               "Content-Type": "text/plain"})
    await client.post("/msg/bob", data="x", headers={"Content-Type": "text/plain"})  # 401
    await client.post("/msg/bob", data="x", headers=basic("eve@elsewhere.org", "pw"))
    logging.getLogger("xmpp_post.test").warning("the XMPP server %s is slow", "xmpp.example")
    logging.getLogger("xmpp_post.test").info("not kept")
    resp = await client.get("/web/status", headers=AUTH)
    state = await resp.json()
    assert "bots" not in state  # none yet: the page shows no such section
    assert state["sessions"]["open"] == 1 and state["sessions"]["max"] == 1000
    assert [s["jid"] for s in state["sessions"]["list"]] == [ALICE]
    refusals = state["refusals"]
    assert refusals["recent"] == refusals["since_start"] == {"unauthorized": 1,
                                                             "domain_not_served": 1}
    messages = [line["message"] for line in state["errors"]]
    assert "the XMPP server xmpp.example is slow" in messages and "not kept" not in messages
    text = await resp.text()
    assert "secret text" not in text and PASSWORD not in text


async def test_admin_entries_are_checked(tmp_path: Path) -> None:
    def load(admin: list[str], tokens: bool = False) -> config.Config:
        path = None
        if tokens:
            pw = secret_file(tmp_path, "pw", "hunter2")
            path = tmp_path / "gw.toml"
            path.write_text(toml({"accounts": {ACCOUNT: {"password_file": str(pw)}},
                                  "tokens": {"ops": token_entry(ACCOUNT)[1]}}))
        return config.load({"domain": ["example.org"], "admin": admin}, environ={},
                           config_file=path)

    assert load(["Alice@Example.ORG", "ops"], tokens=True).admin == (ALICE, "ops")
    for wrong, why in [(["ops"], "neither a JID"), (["eve@elsewhere.org"], "serves"),
                       (["@example.org"], "not a valid JID")]:
        with pytest.raises(ConfigError, match=why) as caught:
            load(wrong)
        assert caught.value.setting == "admin"


def test_the_log_tail_keeps_info_events_on_the_fast_path() -> None:
    """``logs.event`` writes lines itself when only our handlers would see them: the
    status view's LogTail (warnings and up) does not take that away from info events."""
    top = logging.getLogger("webfront_fastpath")
    child = logging.getLogger("webfront_fastpath.child")
    top.propagate = False
    out = logs.handler(io.StringIO())
    top.handlers[:] = [out, LogTail()]
    try:
        assert logs._direct_handlers(child, logging.INFO) == [out]
        assert logs._direct_handlers(child, logging.WARNING) is None  # LogTail sees it
        logs.event(child, "hello", logging.WARNING, code="x")
        assert top.handlers[1].lines[-1]["message"] == "hello code=x"  # type: ignore[attr-defined]
    finally:
        top.handlers.clear()
