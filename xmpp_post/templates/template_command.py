"""The ``xmpp-post template`` commands, as functions ``xmpp_post.cli`` calls.

``xmpp-post template render NAME FILE [--header 'K: V' …] [--query 'k=v' …]`` shows
what a payload (a JSON file, ``-`` for standard input) becomes, without sending it;
``xmpp-post template list`` shows the templates there are. Both read the same
``template_dir`` as the gateway. Exit status: 0 done (also when the template sends
nothing), 1 the template refused the payload, 2 a usage or configuration error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from xmpp_post.errors import ConfigError, GatewayError
from xmpp_post.templates.engine import TemplateSet
from xmpp_post.templates.tool_payload import parse_payload

NOTHING_SENT = "(nothing is sent)"


class UsageError(Exception):
    """A command-line argument that cannot be used."""


def render_command(name: str, file: str | Path, headers: Sequence[str],
                   template_dir: Path | None, *, query: Sequence[str] = (),
                   stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Print the subject (if any) and body template ``name`` makes of ``file``."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        header_map = _pairs(headers, ":", "--header wants 'Name: value'")
        query_map = _pairs(query, "=", "--query wants 'name=value'")
        data = sys.stdin.buffer.read() if str(file) == "-" else Path(file).read_bytes()
        templates = TemplateSet.load(template_dir)
        rendered = templates.render_sync(name, parse_payload("application/json", data),
                                         header_map, query_map)
    except (UsageError, ConfigError) as exc:
        print(f"xmpp-post: {exc}", file=err)
        return 2
    except OSError as exc:
        print(f"xmpp-post: cannot read {file}: {exc.strerror or exc}", file=err)
        return 2
    except GatewayError as exc:
        print(f"xmpp-post: {exc.code}: {exc.message}", file=err)
        return 1
    if rendered.skipped:
        print(NOTHING_SENT, file=out)
        return 0
    if rendered.subject:
        print(f"Subject: {rendered.subject}\n", file=out)
    print(rendered.body, file=out)
    return 0


def list_command(template_dir: Path | None, *, stdout: TextIO | None = None,
                 stderr: TextIO | None = None) -> int:
    """Print each template's name, success reply, origin and description."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        templates = TemplateSet.load(template_dir)
    except ConfigError as exc:
        print(f"xmpp-post: {exc}", file=err)
        return 2
    infos = [templates.info(name) for name in templates.names()]
    width = max((len(info.name) for info in infos), default=4)
    for info in infos:
        origin = "built-in" if info.builtin else str(info.path)
        print(f"{info.name:<{width}}  {info.reply:<7}  {origin}", file=out)
        if info.description:
            print(f"{'':<{width}}  {info.description}", file=out)
    return 0


def _pairs(items: Sequence[str], separator: str, usage: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition(separator)
        if not sep or not key.strip():
            raise UsageError(f"{usage}, not {item!r}")
        found[key.strip()] = value.strip()
    return found
