"""The alert actions' commands, read from a chat message: pure, bounded and linear.

A message's command is its first line that is neither blank nor a quote (``> …``: the
quoted alert, or an XEP-0461 reply's fallback). A leading address (``alerts: …`` or
``alerts, …``, as people write to a bot in a room) is skipped. Words are compared
without case:

* ``silence <duration> [comment]``: ``30m``, ``2h``, ``1d``, ``1h30m``, ``1w``
  (``s``, ``m``, ``h``, ``d``, ``w``), from one minute to ``MAX_SILENCE`` (30 days);
* ``unsilence`` alone;
* ``alerts`` alone.

Anything else is no command (``None``: the message goes to the bot's webhook). A
``silence`` whose duration does not read is a ``CommandError`` with the text to answer.
Nothing here uses a regular expression: each step reads the text once.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_BODY = 64 * 1024  # characters of a message read for its command (a reply may quote a
# whole alert before it: the built-ins cut theirs at 20,000)
MAX_COMMENT = 500
MAX_DURATION_TEXT = 24
MAX_NUMBER_DIGITS = 6
MIN_SILENCE = 60
MAX_SILENCE = 30 * 86400
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
USAGE = ("silence <duration> [comment], e.g. \"silence 2h deploy in progress\" "
         "(30m, 2h, 1d, 1h30m; at most 30d)")


@dataclass(frozen=True)
class Silence:
    seconds: int
    comment: str | None = None


@dataclass(frozen=True)
class Unsilence:
    pass


@dataclass(frozen=True)
class ListAlerts:
    pass


@dataclass(frozen=True)
class CommandError:
    """A command that does not read; ``text`` says how to write it."""

    text: str


Command = Silence | Unsilence | ListAlerts


def command_line(body: str) -> str | None:
    """The first line that is neither blank nor a quote, stripped; None if none."""
    for line in body[:MAX_BODY].splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(">"):
            return stripped
    return None


def parse_command(body: str) -> Command | CommandError | None:
    line = command_line(body)
    if line is None:
        return None
    words = line.split(maxsplit=3)
    if len(words) > 1 and words[0][-1] in ":,":
        words = words[1:]  # an address: "alerts: silence 2h"
        line = line.split(maxsplit=1)[1]
    verb = words[0].lower()
    if verb == "alerts" and len(words) == 1:
        return ListAlerts()
    if verb == "unsilence" and len(words) == 1:
        return Unsilence()
    if verb != "silence":
        return None
    parts = line.split(maxsplit=2)
    if len(parts) < 2:
        return CommandError(f"Say for how long: {USAGE}.")
    seconds = parse_duration(parts[1])
    if seconds is None:
        return CommandError(f"I cannot read the duration {parts[1][:MAX_DURATION_TEXT]!r}: "
                            f"{USAGE}.")
    if not MIN_SILENCE <= seconds <= MAX_SILENCE:
        return CommandError("A silence lasts from 1m to 30d.")
    comment = parts[2].strip()[:MAX_COMMENT] if len(parts) > 2 else ""
    return Silence(seconds, comment or None)


def parse_duration(text: str) -> int | None:
    """Seconds of ``1h30m``-like text (numbers each followed by a unit); None if it
    does not read."""
    if not 0 < len(text) <= MAX_DURATION_TEXT:
        return None
    total, digits = 0, ""
    for char in text.lower():
        if "0" <= char <= "9":
            digits += char
            if len(digits) > MAX_NUMBER_DIGITS:
                return None
        elif char in UNITS and digits:
            total += int(digits) * UNITS[char]
            digits = ""
        else:
            return None
    return total if not digits and total > 0 else None
