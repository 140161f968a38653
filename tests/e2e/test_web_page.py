"""The web page in a real browser (Debian's Chromium, driven by Playwright) against a real
gateway and the real Prosody: a message sent from the page arrives, templates render a
sample and an edited payload, a render error shows the template's line, markup in a
payload stays text and runs nothing, and the page's headers hold. The test of each view
takes its screenshot: into docs/images/web-*.png for the documentation when
XMPP_POST_DOCS_SCREENSHOTS=1 is set, else into a temporary folder (so a test run leaves the
checkout unchanged)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    FilePayload,
    Page,
    async_playwright,
    expect,
)

from tests.helpers import PASSWORD, Account, GatewayFactory, ReceiverFactory
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.service import Gateway

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: Playwright never fetches a browser
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
IMAGES = (DOCS_IMAGES if os.environ.get("XMPP_POST_DOCS_SCREENSHOTS") == "1"
          else Path(tempfile.gettempdir()) / "xmpp-post-screenshots")
WIDE = {"width": 1000, "height": 800}
XSS = '<img src=x onerror="window.pwned = 1">'

OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture(scope="module")
def people(prosody: ProsodyServer) -> tuple[Account, Account]:
    """alice sends from the page; ops receives."""
    return (Account(prosody.register("alice", PASSWORD), PASSWORD),
            Account(prosody.register("ops", PASSWORD), PASSWORD))


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed: run scripts/setup --test")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def open_page(browser: Browser) -> AsyncIterator[OpenPage]:
    """``await open_page(gateway, "#templates", who=account)``: the page, ready, with the
    credentials typed in; no script error or console error (a CSP violation is one) may
    happen."""
    problems: list[str] = []

    async def open_one(gateway: Gateway, view: str = "", *, who: Account | None = None,
                       viewport: dict[str, int] = WIDE, scheme: str = "light") -> Page:
        context = await browser.new_context(viewport=viewport,  # type: ignore[arg-type]
                                            color_scheme=scheme)  # type: ignore[arg-type]
        page = await context.new_page()

        def console(message: ConsoleMessage) -> None:
            # The browser logs every 4xx answer; the page shows those itself.
            if message.type == "error" and not message.text.startswith(
                    "Failed to load resource: the server responded with a status of 4"):
                problems.append(message.text)

        page.on("console", console)
        page.on("pageerror", lambda error: problems.append(str(error)))
        response = await page.goto(gateway.url + "/msg/" + view)
        assert response is not None and response.status == 200
        await expect(page.locator("body")).to_have_attribute("data-ready", "true")
        if who is not None:
            await page.fill("#jid", who.jid)
            await page.fill("#password", who.password)
        return page

    yield open_one
    assert problems == []


async def shoot(page: Page, name: str) -> None:
    """The page as it is, for the documentation (no field focused)."""
    IMAGES.mkdir(exist_ok=True)
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    await page.screenshot(path=str(IMAGES / name), full_page=True, animations="disabled")


async def test_the_page_is_served_with_its_policy(gateway: Gateway, browser: Browser) -> None:
    page = await browser.new_page()  # not open_page: this test provokes a violation
    response = await page.goto(gateway.url + "/msg/")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    # The policy holds in the browser: an inline script is refused.
    ran = await page.evaluate("""() => new Promise((done) => {
        document.addEventListener("securitypolicyviolation", () => done("refused"));
        const script = document.createElement("script");
        script.textContent = "window.inlineRan = true";
        document.body.append(script);
        setTimeout(() => done(window.inlineRan ? "ran" : "silent"), 2000);
    })""")
    assert ran == "refused"


async def test_a_message_sent_from_the_page_arrives(
        gateway: Gateway, open_page: OpenPage, receiver: ReceiverFactory,
        people: tuple[Account, Account]) -> None:
    alice, ops = people
    inbox = await receiver(ops)
    page = await open_page(gateway, "#send", who=alice)
    await page.fill("#send-to", ops.local)
    await page.fill("#send-subject", "Nightly backup")
    await page.fill("#send-body", "Backup of *db1* finished in `42 s`")
    await page.click("#send-button")
    await expect(page.locator("#send-answer")).to_contain_text("201 Created")
    received = await asyncio.wait_for(inbox.next(), 10)
    assert received.body == "Backup of *db1* finished in `42 s`"
    assert received.subject == "Nightly backup" and received.sender.startswith(alice.jid)
    answer = json.loads((await page.text_content("#send-answer") or "").split("\n", 1)[1])
    assert answer["to"] == ops.jid and answer["from"] == alice.jid
    assert await page.locator("#send-files-field").is_visible()  # files: issue 22
    assert await page.locator("#send-encrypt-field").is_visible()  # OMEMO: issue 24
    await shoot(page, "web-send.png")
    # The same view at 320 px in the dark theme: nothing wider than the screen.
    narrow = await open_page(gateway, "#send", who=alice,
                             viewport={"width": 320, "height": 640}, scheme="dark")
    assert await narrow.evaluate("document.documentElement.scrollWidth") <= 320
    await shoot(narrow, "web-send-narrow-dark.png")


async def test_files_sent_from_the_page_arrive(
        gateway: Gateway, open_page: OpenPage, receiver: ReceiverFactory,
        people: tuple[Account, Account]) -> None:
    alice, ops = people
    inbox = await receiver(ops)
    page = await open_page(gateway, "#send", who=alice)
    await page.fill("#send-to", ops.local)
    await page.fill("#send-body", "Tonight's report")
    report = FilePayload(name="report.txt", mimeType="text/plain",
                         buffer=b"all 1,204 passed\n")
    await page.set_input_files("#send-files", files=[report])
    await page.click("#send-button")
    await expect(page.locator("#send-answer")).to_contain_text("201 Created")
    answer = json.loads((await page.text_content("#send-answer") or "").split("\n", 1)[1])
    url = answer["files"][0]["url"]
    text, file = [await asyncio.wait_for(inbox.next(), 10) for _ in range(2)]
    assert text.body == "Tonight's report"
    assert file.body == url and f'<x xmlns="jabber:x:oob"><url>{url}</url></x>' in file.xml


async def test_a_template_renders_a_sample_and_an_edited_payload(
        gateway: Gateway, open_page: OpenPage, people: tuple[Account, Account]) -> None:
    alice, ops = people
    page = await open_page(gateway, "#templates", who=alice)
    await page.select_option("#tpl-name", "github")
    stanza = page.locator("#tpl-stanza")
    await expect(stanza).to_contain_text(f'<message type="chat" to="{alice.jid}"')
    message = page.locator("#tpl-message")
    await expect(message).to_contain_text("*alice* pushed 3 commits to `main` of example/repo")
    assert await message.locator("strong").first.text_content() == "*alice*"  # XEP-0393
    assert await message.locator("code").count() >= 3
    link = message.locator("a").first
    assert (await link.get_attribute("href") or "").startswith("https://github.com/")
    assert await page.input_value("#tpl-headers") == "X-GitHub-Event: push"
    await page.fill("#tpl-to", ops.local)
    await expect(stanza).to_contain_text(f'to="{ops.jid}"')
    await shoot(page, "web-templates.png")
    payload = json.loads(await page.input_value("#tpl-payload"))
    payload["pusher"]["name"] = "carol"
    await page.fill("#tpl-payload", json.dumps(payload, indent=2))  # re-rendered as typed
    await expect(message).to_contain_text("*carol* pushed 3 commits")
    await expect(page.locator("#tpl-status")).to_have_text("Rendered; nothing was sent.")


async def test_a_render_error_shows_the_templates_line(
        start_gateway: GatewayFactory, open_page: OpenPage, tmp_path: Path,
        people: tuple[Account, Account]) -> None:
    (tmp_path / "deploy.j2").write_text(
        "{# Deploys from our CI. #}\nDeployed {{ payload.version }}\n"
        "{{ 100 // payload.replicas }} per replica\n")
    gateway = await start_gateway(template_dir=str(tmp_path))
    page = await open_page(gateway, "#templates", who=people[0])
    await page.select_option("#tpl-name", "deploy")
    await page.fill("#tpl-payload", '{"version": "1.2", "replicas": 4}')
    message = page.locator("#tpl-message")
    await expect(message).to_contain_text("25 per replica")
    assert await message.inner_text() == "Deployed 1.2\n25 per replica"
    await page.fill("#tpl-payload", '{"version": "1.3", "replicas": 0}')
    error = page.locator("#tpl-error")
    await expect(error).to_contain_text("422 Unprocessable")
    await expect(error).to_contain_text("template 'deploy', line 3: ZeroDivisionError")
    await expect(page.locator("#tpl-status")).to_have_class("status error")


async def test_markup_in_a_payload_shows_as_text_and_runs_nothing(
        gateway: Gateway, open_page: OpenPage, people: tuple[Account, Account]) -> None:
    page = await open_page(gateway, "#templates", who=people[0])
    await page.select_option("#tpl-name", "discord")
    await page.fill("#tpl-payload", json.dumps({"content": f"*{XSS}*", "username": XSS}))
    message = page.locator("#tpl-message")
    await expect(message).to_contain_text(XSS)
    await expect(page.locator("#tpl-stanza")).to_contain_text("&lt;img src=x onerror=")
    # An error that repeats the input: the send view's answer.
    await page.click("#tab-send")
    tag = "<img/src=x/onerror=window.pwned=1>"  # one recipient: no white space
    await page.fill("#send-to", tag)
    await page.fill("#send-body", XSS)
    await page.click("#send-button")
    await expect(page.locator("#send-answer")).to_contain_text("400 Bad Request")
    await expect(page.locator("#send-answer")).to_contain_text("<img")
    assert await page.locator("main img").count() == 0
    assert await page.evaluate("window.pwned") is None


async def test_the_status_view_for_admins(
        start_gateway: GatewayFactory, open_page: OpenPage,
        people: tuple[Account, Account], account: Callable[..., Account]) -> None:
    alice = people[0]
    gateway = await start_gateway(admin=[alice.jid])
    stranger = account("stranger")
    page = await open_page(gateway, "#status", who=stranger)
    await expect(page.locator("#status-message")).to_contain_text("403 Forbidden — not_admin")
    await page.fill("#password", "wrong")  # a refusal for the table
    await expect(page.locator("#status-message")).to_contain_text("401")
    await page.fill("#jid", alice.jid)
    await page.fill("#password", alice.password)
    sessions = page.locator("#status-sessions")
    await expect(sessions).to_contain_text(alice.jid)
    await expect(page.locator("#status-refusals")).to_contain_text("not_admin")
    await expect(page.locator("#status-refusals")).to_contain_text("invalid_credentials")
    assert await page.locator("#status-bots").is_hidden()  # no bots yet
    await shoot(page, "web-status.png")


async def test_the_page_works_with_the_keyboard(gateway: Gateway, open_page: OpenPage) -> None:
    page = await open_page(gateway)
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "skip"
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "tab-templates"
    await page.keyboard.press("Enter")
    await expect(page.locator("#templates-title")).to_be_focused()  # waits for the handler
    assert await page.locator("#view-templates").is_visible()
    assert await page.locator("#view-send").is_hidden()


async def test_styling_is_rendered_as_clients_show_it(gateway: Gateway,
                                                      open_page: OpenPage) -> None:
    page = await open_page(gateway)
    cases = {
        "*bold* _it_ ~gone~ `co*de*`": "<p><strong><span class=\"directive\">*</span>bold"
        "<span class=\"directive\">*</span></strong> <em><span class=\"directive\">_</span>"
        "it<span class=\"directive\">_</span></em> <s><span class=\"directive\">~</span>gone"
        "<span class=\"directive\">~</span></s> <code><span class=\"directive\">`</span>"
        "co*de*<span class=\"directive\">`</span></code></p>",
        "a*b* and * c* and **": "<p>a*b* and * c* and **</p>",
        "> quoted\n>> deeper\nafter": "<blockquote><p>quoted</p><blockquote><p>deeper</p>"
        "</blockquote></blockquote><p>after</p>",
        "```\n*not styled*\n```": "<pre><span class=\"directive\">```</span>\n*not styled*"
        "\n<span class=\"directive\">```</span></pre>",
        "see https://example.org/a_b_c.": "<p>see <a href=\"https://example.org/a_b_c\" "
        "rel=\"noopener noreferrer nofollow\" target=\"_blank\">https://example.org/a_b_c</a>"
        ".</p>",
        XSS: "<p>&lt;img src=x onerror=\"window.pwned = 1\"&gt;</p>",
        "javascript:alert(1) <a href=x>": "<p>javascript:alert(1) &lt;a href=x&gt;</p>",
    }
    for text, html in cases.items():
        shown = await page.evaluate("""async (text) => {
            const { renderStyled } = await import("./static/styling.js");
            const box = document.createElement("div");
            box.append(renderStyled(text));
            return box.innerHTML;
        }""", text)
        assert shown == html, text
    long_line = "*a " * 20000  # no closing directive anywhere: still one linear pass
    took = await page.evaluate("""async (text) => {
        const { renderStyled } = await import("./static/styling.js");
        const started = performance.now();
        renderStyled(text);
        return performance.now() - started;
    }""", long_line)
    assert took < 2000, took
