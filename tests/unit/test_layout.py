"""The layout's rules, read from the imports: the XMPP side never imports the HTTP side,
the HTTP side and authentication never import slixmpp, ntfy's core imports neither
library, and modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "xmpp_post"
BANNED = {
    "xmpp": ("aiohttp", "xmpp_post.http", "xmpp_post.auth"),
    "http": ("slixmpp", "xmpp_post.xmpp"),
    "auth": ("slixmpp", "xmpp_post.xmpp", "aiohttp"),
    "state": ("slixmpp", "xmpp_post.xmpp", "aiohttp", "xmpp_post.http"),
    # ntfy's pure core: no HTTP or XMPP library (its pure helpers may come from http/)
    "ntfy": ("slixmpp", "xmpp_post.xmpp", "aiohttp", "xmpp_post.auth", "xmpp_post.config"),
}
MAX_LINES = 400


def imports_of(path: Path) -> set[str]:
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*parts, module] if module else parts)
            found.add(module)
    return found


@pytest.mark.parametrize("side", sorted(BANNED))
def test_sides_do_not_import_each_other(side: str) -> None:
    wrong = [f"{path.relative_to(PACKAGE)} imports {module}"
             for path in sorted((PACKAGE / side).rglob("*.py"))
             for module in sorted(imports_of(path))
             if any(module == b or module.startswith(b + ".") for b in BANNED[side])]
    assert wrong == []


def test_modules_are_small() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
