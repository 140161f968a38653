"""The ``[topics]`` section (ntfy topics that go to chosen JIDs) and the checks that tie
ntfy publishing to the flat settings.

::

    [topics]
    ops = ["ops@conference.example.org", "alice@example.org"]

The table itself is validated by ``ntfy.validate_topics``; ``check`` runs once the flat
settings are known, with or without the table: ntfy lives at the root of the listener,
so it needs a base path other than ``/``, and no topic may be named like the base
path's first segment. Importing the ntfy front registers the section.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xmpp_post.config import Config
from xmpp_post.config.sections import Section, register
from xmpp_post.errors import ConfigError
from xmpp_post.fronts.ntfy.topics import GATEWAY_PATHS, reserved_names, validate_topics


def _parse(table: Mapping[str, Any], _path: Path | None) -> dict[str, tuple[str, ...]]:
    return validate_topics(table, reserved=GATEWAY_PATHS)


def check(base_path: str, ntfy: bool, topics: Mapping[str, tuple[str, ...]] | None) -> None:
    """Raise ``ConfigError`` when ntfy publishing cannot be served as configured."""
    if ntfy and base_path == "/":
        raise ConfigError("ntfy", "ntfy publishing is served at the root of the listener, "
                                  "which base_path / takes: set another base_path (such as "
                                  "/msg), or ntfy = false (--no-ntfy)")
    reserved = reserved_names(base_path)
    for name in topics or {}:
        if name.lower() in reserved:
            raise ConfigError("topics", f"{name!r} is one of the gateway's own paths "
                                        f"(base_path {base_path})")


def _check(topics: Mapping[str, tuple[str, ...]] | None, config: Config) -> None:
    check(config.base_path, config.ntfy, topics)


SECTION = register(Section(
    "topics", "ntfy topics and the JIDs (users or rooms) they go to: name = [JIDs]", _parse,
    _check, always=True))
