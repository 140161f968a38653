"""The documentation's reference pages, generated from the code.

- ``docs/reference/configuration.md`` from the settings table (``config.GROUPS``) and
  the sections of the configuration file (``config.sections.SECTIONS``);
- ``docs/reference/cli.md`` from argparse: every command's ``--help``;
- ``docs/reference/errors.md`` from the registry of error codes
  (``http.error_codes.ERROR_CODES``).

``python -m xmpp_post.docsgen`` (or ``scripts/docs-gen``) writes them in the checkout
it runs from; ``--check`` only says which are stale (exit 1). ``tests/unit/test_docs.py``
fails when a page differs from what this module makes.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from xmpp_post import cli, config
from xmpp_post.config.sections import SECTIONS
from xmpp_post.config.settings import Setting, default_text, limit_text
from xmpp_post.http.error_codes import ERROR_CODES

HELP_WIDTH = 100  # columns of the --help shown in the CLI reference
_SPECIAL = re.compile(r"([\\`*_|\[\]])")


def _generated(source: str) -> str:
    return (f"<!-- Generated from {source} by `python -m xmpp_post.docsgen`: "
            "edit the code, not this page. -->\n")


def _md(text: str) -> str:
    """Plain text as Markdown that shows it as it is (in a table cell too)."""
    escaped = _SPECIAL.sub(r"\\\1", text)
    return escaped.replace("<", "&lt;").replace(">", "&gt;")


def _setting_row(setting: Setting) -> str:
    flag = setting.flag
    if setting.kind == "bool":
        flag += f"` `--no-{setting.flag[2:]}"
    elif setting.metavar:
        flag += " " + setting.metavar
    if setting.name == "domain":
        default = "required"
    else:
        shown = default_text(setting)
        default = f"`{shown}`" if shown else "none"
    rule = limit_text(setting)
    meaning = _md(setting.help) + (f" Must be {_md(rule)}." if rule else "")
    return (f"| `{setting.name}` | `{flag}` | `{setting.env}` | {default} | {meaning} |")


def configuration_page() -> str:
    lines = [
        "# Configuration reference", "",
        _generated("the settings table, `xmpp_post/config/settings.py`"),
        "Every setting is a key of the TOML file given with `--config`, an environment "
        "variable and an option of `xmpp-post serve`. The command line wins over the "
        "environment, which wins over the file. In the file, a key may be written with "
        "dashes or underscores; lists are TOML arrays, and comma-separated in the "
        "environment. Sizes take `KiB` and `MiB`; booleans `true`, `false`, `1`, `0`, "
        "`yes`, `no`, `on`, `off`. A value out of its limits stops the gateway at start "
        "(exit code 2), naming the setting. See [Configuration](../configuration.md) for "
        "examples, and `xmpp-post example-config` for a file with every setting.",
    ]
    for group in config.GROUPS:
        lines += ["", f"## {group.title}", "", _md(group.about), "",
                  "| Key | Option | Environment | Default | Meaning |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [_setting_row(setting) for setting in group.settings]
    lines += ["", "## Sections of the file", "",
              "Tables beside the flat keys, read from the file only (and again on SIGHUP):",
              ""]
    lines += [f"- `[{name}]`: {_md(section.help)}" for name, section in SECTIONS.items()]
    return "\n".join(lines) + "\n"


@contextmanager
def _columns(width: int) -> Iterator[None]:
    """argparse wraps --help at the terminal's width: fix it, so the page is the same
    wherever it is made."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def cli_page() -> str:
    lines = [
        "# Command line", "",
        _generated("the argument parsers of `xmpp_post/cli.py`"),
        "`xmpp-post` and `python -m xmpp_post` are the same command. Every option of "
        "`serve` is also a setting of the file and the environment: see the "
        "[configuration reference](configuration.md).",
    ]
    with _columns(HELP_WIDTH):
        for name, parser in cli.parsers().items():
            lines += ["", f"## `{name}`", "", "```text", parser.format_help().rstrip(),
                      "```"]
    return "\n".join(lines) + "\n"


def errors_page() -> str:
    lines = [
        "# Error codes", "",
        _generated("the registry of error codes, `xmpp_post/http/error_codes.py`"),
        "Every error answer has the same JSON shape, and a status that says whose fault "
        "it is and whether a retry can help:", "",
        "```json",
        '{"error": "invalid_jid", "message": "invalid recipient \'a@b@c\': second @ found '
        'before parsing the resource"}',
        "```", "",
        "- **4xx**: nothing was delivered, and the same request gets the same answer, "
        "except 408 and 429 (slow down) and 401 or 403 once the credentials or the "
        "server's refusal change.",
        "- **401** comes with `WWW-Authenticate: Basic realm=\"xmpp-post\", "
        "charset=\"UTF-8\", Bearer realm=\"xmpp-post\"`; **405** with `Allow`.",
        "- **429**, **503** and **504** come with `Retry-After` (the XMPP server is not "
        "asked on 429). A 503 from the XMPP side means nothing was acknowledged: retry. A "
        "504 means the message was written but not acknowledged in time: it may or may "
        "not have been delivered (retry with the same `Idempotency-Key`).",
        "- A request the HTTP parser refuses (400 `malformed_request`, 431, a slow head) "
        "gets the same JSON shape, naming the problem without quoting the request, and "
        "the connection is closed (`Connection: close`, as on 408).",
        "- On ntfy's paths an error also carries `http` (the status) and `code` (ntfy's "
        "number where ntfy has the same error); with several recipients each failed "
        "recipient's entry carries its `error`, `message` and `status` (see the "
        "[API](../api.md#several-recipients)).",
        "- Bad input never causes a 500 and never harms the sender's XMPP session.",
        "",
        "| Status | Code | Meaning |",
        "| --- | --- | --- |",
    ]
    for entry in sorted(ERROR_CODES, key=lambda e: e.status):
        status = str(entry.status) + "".join(f", {more}" for more in entry.also)
        lines.append(f"| {status} | `{entry.code}` | {_md(entry.meaning)} |")
    return "\n".join(lines) + "\n"


PAGES: dict[str, Callable[[], str]] = {
    "docs/reference/configuration.md": configuration_page,
    "docs/reference/cli.md": cli_page,
    "docs/reference/errors.md": errors_page,
}


def stale(root: Path) -> list[str]:
    """The generated pages under ``root`` that differ from what the code makes."""
    return [path for path, make in PAGES.items()
            if not (root / path).is_file()
            or (root / path).read_text(encoding="utf-8") != make()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xmpp_post.docsgen",
                                     description="Write the documentation's reference "
                                                 "pages from the code.")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="the checkout (default: the current folder)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a page is stale")
    args = parser.parse_args(argv)
    if args.check:
        old = stale(args.root)
        for path in old:
            print(f"{path} is stale: run python -m xmpp_post.docsgen", file=sys.stderr)
        return 1 if old else 0
    for path, make in PAGES.items():
        target = args.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(make(), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
