"""The documentation: its generated pages are fresh, and the README stays short.

``mkdocs build --strict`` (in scripts/test) checks every link and anchor of the site.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xmpp_post import docsgen

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(docsgen.PAGES))
def test_generated_page_is_fresh(path: str) -> None:
    written = (ROOT / path).read_text(encoding="utf-8")
    assert written == docsgen.PAGES[path](), (
        f"{path} is stale: run scripts/docs-gen (python -m xmpp_post.docsgen)")


def test_docsgen_check_says_what_is_stale(tmp_path: Path) -> None:
    assert docsgen.main(["--root", str(tmp_path), "--check"]) == 1
    assert docsgen.main(["--root", str(tmp_path)]) == 0
    assert docsgen.main(["--root", str(tmp_path), "--check"]) == 0
    assert docsgen.stale(ROOT) == []


def test_cli_reference_shows_every_command_and_option() -> None:
    page = docsgen.cli_page()
    for name in ("xmpp-post serve", "xmpp-post example-config", "xmpp-post token create",
                 "xmpp-post template render", "xmpp-post template list"):
        assert f"## `{name}`" in page
    assert "--no-direct-tls" in page and "Several instances:" in page


def test_error_reference_lists_every_code() -> None:
    from xmpp_post.http.error_codes import ERROR_CODES

    page = docsgen.errors_page()
    for entry in ERROR_CODES:
        assert f"`{entry.code}`" in page


def test_readme_is_short_and_points_to_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 200
    assert "scripts/demo" in readme and "scripts/test" in readme and "curl" in readme
    linked = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert linked
    for path in linked:
        assert (ROOT / path).is_file(), path


def test_every_page_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (ROOT / "docs").rglob("*.md"):
        assert str(page.relative_to(ROOT / "docs")) in nav, page
