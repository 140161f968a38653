"""One event is one line: values from requests cannot forge log lines; and the line of an
event is the same whether ``event`` writes it directly or it goes through ``logging`` (a
filter or a foreign handler on the way), in both formats."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

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


FIELDS: dict[str, Any] = {"method": "POST", "route": "/msg/{recipient}", "status": 201, "ms": 1.25,
          "sender": "alice@example.org", "error": "-", "peer": "127.0.0.1",
          "odd": 'a "quoted" = value\nwith a line break', "empty": ""}


@pytest.fixture(name="logger")
def logger_fixture() -> Iterator[Callable[[], logging.Logger]]:
    """``logger()``: a logger of its own, without the capturing handlers pytest gives
    every logger that does not propagate (set aside until the test ends)."""
    logger = logging.getLogger("xmpp_post.tests.logs")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    saved: list[logging.Handler] = []

    def own() -> logging.Logger:
        saved[:] = logger.handlers
        logger.handlers.clear()
        return logger

    yield own
    logger.handlers[:] = saved
    logger.filters.clear()


def _without_time(line: str, fmt: str) -> object:
    if fmt == "json":
        doc = json.loads(line)
        assert doc.pop("ts")
        return doc
    date, clock, rest = line.split(" ", 2)
    assert len(date) == 10 and len(clock) == 12 and clock[8] == ","
    return rest


@pytest.mark.parametrize("fmt", logs.FORMATS)
def test_direct_and_through_logging_write_the_same_line(
        fmt: str, logger: Callable[[], logging.Logger],
        monkeypatch: pytest.MonkeyPatch) -> None:
    log = logger()
    stream = io.StringIO()
    log.addHandler(logs.handler(stream, fmt))
    records: list[logging.LogRecord] = []
    made = logging.getLogRecordFactory()

    def counting(*args: object, **kwargs: object) -> logging.LogRecord:
        record = made(*args, **kwargs)
        records.append(record)
        return record

    monkeypatch.setattr(logging, "_logRecordFactory", counting)
    token = logs.REQUEST_ID.set("req-1")
    try:
        logs.event(log, "request", **FIELDS)
        assert records == []  # written directly: no LogRecord
        log.addFilter(lambda record: True)
        logs.event(log, "request", **FIELDS)
        assert len(records) == 1  # a filter on the way: through logging
    finally:
        logs.REQUEST_ID.reset(token)
    direct, through = stream.getvalue().splitlines()
    assert _without_time(direct, fmt) == _without_time(through, fmt)
    assert "req-1" in direct
    if fmt == "text":
        assert direct.split(" ", 2)[2].startswith("INFO xmpp_post.tests.logs [req-1] request "
                                                  "method=POST route=/msg/{recipient} ")
        assert 'odd="a \\"quoted\\" = value\\nwith a line break" empty=""' in direct


def test_a_foreign_handler_gets_a_record_and_ours_the_same_line(
        logger: Callable[[], logging.Logger]) -> None:
    log = logger()
    ours, theirs = io.StringIO(), io.StringIO()
    log.addHandler(logs.handler(ours))
    foreign = logging.StreamHandler(theirs)
    foreign.setFormatter(logs.TextFormatter())
    log.addHandler(foreign)
    logs.event(log, "request", status=201)
    assert ours.getvalue().split(" ", 2)[2] == theirs.getvalue().split(" ", 2)[2]
    assert "[-] request status=201" in ours.getvalue()


def test_levels_are_respected(logger: Callable[[], logging.Logger]) -> None:
    log = logger()
    stream = io.StringIO()
    out = logs.handler(stream)
    out.setLevel(logging.WARNING)
    log.addHandler(out)
    logs.event(log, "quiet", level=logging.INFO)
    logs.event(log, "loud", level=logging.WARNING)
    log.setLevel(logging.ERROR)
    logs.event(log, "also quiet", level=logging.WARNING)
    assert [line.split(" ", 5)[5] for line in stream.getvalue().splitlines()] == ["loud"]
