"""ntfy's action buttons, parsed from a JSON array or from ntfy's short header format.

The short format: actions are separated by ``;``, an action's parts by ``,``; a part is
``key=value`` or a bare value, which means ``action``, then ``label``, then (for ``view``
and ``http``) ``url``. A value may be quoted with ``"`` or ``'`` to hold ``,`` or ``;``;
a backslash escapes the quote inside it. ``headers.<name>=`` and ``extras.<name>=`` set
one HTTP header or Android extra. Example::

    view, Open portal, https://home.example.org/, clear=true; http, Turn down, https://api.example.org/, body='{"t": 65}'

ntfy's rules are kept: at most three actions; ``action`` is view, broadcast or http;
a label is required; view and http need a URL; GET and HEAD requests have no body.
Anything else is 400 ``invalid_actions``.
"""  # noqa: E501

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from xmpp_post.errors import BadRequest

KINDS = ("view", "broadcast", "http")
WITH_URL = ("view", "http")
MAX_ACTIONS = 3
BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}

_KEY = re.compile(r"([-.\w]++)\s*+=\s*+")
_SPACE = " \t\r\n"
_SPACES = re.compile(r"[ \t\r\n]*+")
_PART_END = re.compile(r"[,;]")
_CLOSING = {quote: re.compile(rf"(?<!\\){quote}") for quote in ("'", '"')}


@dataclass(frozen=True)
class Action:
    """One action button of a notification."""

    action: str
    label: str
    url: str = ""
    clear: bool = False
    method: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    intent: str = ""
    extras: tuple[tuple[str, str], ...] = ()


def _invalid(why: str) -> BadRequest:
    return BadRequest(f"invalid actions: {why}", code="invalid_actions")


def parse_actions(text: str) -> tuple[Action, ...]:
    """The actions ``text`` defines: a JSON array if it starts with ``[``, else short format."""
    text = text.strip()
    if not text:
        return ()
    items = _from_json(text) if text.startswith("[") else _ShortFormat(text).parse()
    actions = tuple(_checked(item) for item in items)
    if len(actions) > MAX_ACTIONS:
        raise _invalid(f"at most {MAX_ACTIONS} actions are allowed")
    return actions


def _from_json(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise _invalid("not a valid JSON array") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise _invalid("the JSON must be an array of objects")
    out: list[dict[str, Any]] = []
    for item in data:
        fields: dict[str, Any] = {}
        for key, value in item.items():
            if value is None:
                continue
            if key in ("headers", "extras"):
                if not isinstance(value, dict) or not all(
                        isinstance(v, str) for v in value.values()):
                    raise _invalid(f"{key!r} must be an object of strings")
                fields[key] = dict(value)
            elif key == "clear":
                if not isinstance(value, bool):
                    raise _invalid("'clear' must be true or false")
                fields[key] = value
            elif key in ("action", "label", "url", "method", "body", "intent"):
                if not isinstance(value, str):
                    raise _invalid(f"{key!r} must be a string")
                fields[key] = value
            # other members (ntfy's "id", for one) are ignored, as ntfy does
        out.append(fields)
    return out


def _checked(fields: dict[str, Any]) -> Action:
    kind = str(fields.get("action", "")).strip().lower()
    label = str(fields.get("label", ""))
    url = str(fields.get("url", ""))
    method = str(fields.get("method", "")).upper()
    body = str(fields.get("body", ""))
    if kind not in KINDS:
        raise _invalid(f"'action' must be one of {', '.join(KINDS)}")
    if not label:
        raise _invalid("every action needs a label")
    if kind in WITH_URL and not url:
        raise _invalid(f"a {kind} action needs a url")
    if kind == "http" and method in ("GET", "HEAD") and body:
        raise _invalid(f"an http action with method {method} cannot have a body")
    return Action(
        action=kind, label=label, url=url, clear=bool(fields.get("clear", False)),
        method=method, headers=tuple(fields.get("headers", {}).items()), body=body,
        intent=str(fields.get("intent", "")), extras=tuple(fields.get("extras", {}).items()),
    )


class _ShortFormat:
    """A reader of the short format, from one separator or quote to the next."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> list[dict[str, Any]]:
        actions: list[dict[str, Any]] = []
        while self.pos < len(self.text):
            actions.append(self._action())
        return actions

    def _action(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"headers": {}, "extras": {}}
        index = 0
        while True:
            key, value, last = self._part()
            self._apply(fields, index, key, value)
            self._skip_space()
            if last:
                return fields
            index += 1

    def _part(self) -> tuple[str, str, bool]:
        """One ``key=value`` or bare value; ``last`` when it ends its action."""
        self._skip_space()
        key = ""
        match = _KEY.match(self.text, self.pos)
        if match:
            key, self.pos = match.group(1), match.end()
        char = self._peek()
        if char in ("", ",", ";"):
            self.pos += len(char)
            return key, "", char != ","
        if char in ("'", '"'):
            value, last = self._quoted(char)
            return key, value, last
        start = self.pos
        found = _PART_END.search(self.text, start)
        self.pos = found.start() if found else len(self.text)
        end = self._peek()
        value = self.text[start:self.pos].strip(_SPACE)
        self.pos += len(end)
        return key, value, end != ","

    def _quoted(self, quote: str) -> tuple[str, bool]:
        self.pos += 1
        start = self.pos
        closing = _CLOSING[quote].search(self.text, start)
        if closing is None:
            raise _invalid(f"a quote opened at position {start} is not closed")
        value = self.text[start:closing.start()].replace("\\" + quote, quote)
        self.pos = closing.end()
        self._skip_space()
        end = self._peek()
        if end not in ("", ",", ";"):
            raise _invalid(f"unexpected character after a quoted value at "
                           f"position {self.pos}")
        self.pos += len(end)
        return value, end != ","

    def _apply(self, fields: dict[str, Any], index: int, key: str, value: str) -> None:
        if not key:
            if index == 0:
                key = "action"
            elif index == 1:
                key = "label"
            elif index == 2 and str(fields.get("action", "")).strip().lower() in WITH_URL:
                key = "url"
            else:
                raise _invalid(f"part {index + 1} of an action has no key")
        lowered = key.lower()
        if lowered.startswith("headers."):
            fields["headers"][key[len("headers."):]] = value
        elif lowered.startswith("extras."):
            fields["extras"][key[len("extras."):]] = value
        elif lowered == "clear":
            if value.lower() not in BOOL_WORDS:
                raise _invalid("'clear' must be true, yes, 1, false, no or 0")
            fields["clear"] = BOOL_WORDS[value.lower()]
        elif lowered in ("action", "label", "url", "method", "body", "intent"):
            fields[lowered] = value
        else:
            raise _invalid(f"unknown key {key[:40]!r}")

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _skip_space(self) -> None:
        found = _SPACES.match(self.text, self.pos)
        self.pos = found.end() if found else self.pos
