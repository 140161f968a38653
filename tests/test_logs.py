"""One event is one line: values from requests cannot forge log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

from xmpp_post import logs


def render(fmt: str, emit: Callable[[logging.Logger], None]) -> str:
    stream = io.StringIO()
    logger = logging.getLogger("xmpp_post.test_logs")
    handler = logs.handler(stream, fmt)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


FORGED = "bob\n2026-01-01 00:00:00,000 ERROR forged\r\x1b[2K\u2028\x85"


def test_text_values_and_messages_stay_on_one_line() -> None:
    def emit(log: logging.Logger) -> None:
        logs.event(log, "request", path=FORGED, peer="1.2.3.4")
        log.warning("failed login for %s", FORGED)

    out = render("text", emit)
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert "forged" in lines[0] and "peer=1.2.3.4" in lines[0]
    assert all(not line.startswith("2026-01-01") for line in lines)
    assert "\r" not in out and "\x1b" not in out


def test_tracebacks_are_indented_so_no_line_looks_like_an_event() -> None:
    def emit(log: logging.Logger) -> None:
        try:
            raise ValueError(FORGED)
        except ValueError:
            log.exception("unexpected error handling %s", FORGED)

    first, *rest = render("text", emit).rstrip("\n").split("\n")
    assert "ERROR" in first and rest
    assert all(line.startswith("  ") for line in rest), rest


def test_json_lines_are_one_object_each() -> None:
    out = render("json", lambda log: logs.event(log, "request", path=FORGED))
    [line] = out.splitlines()
    assert json.loads(line)["path"] == FORGED


def test_escape_leaves_printable_text_alone() -> None:
    assert logs.escape("jürgen@example.org") == "jürgen@example.org"
    assert logs.escape("a\nb\tc") == "a\\nb\\tc"
