"""Sections: TOML tables beside the flat settings (``[topics]``, ``[accounts."…"]``, ...).

A section is read from the configuration file only (its entries hold structure and
names of secret files, not values for a flag). Each is a ``Section``: its name, what it
is for, the function that validates its table, raising ``ConfigError`` that names
the section and entry, and optionally ``check(value, config)``: the checks that need
the other sections or the flat settings (a token's account must be in ``[accounts]``),
run once everything else is valid; with ``always``, also when the table is absent
(``value`` None: a front's checks of the flat settings it depends on). A front
registers its own section when it is imported (``xmpp_post.fronts``). ``Sections``
holds the parsed values; a gateway without a configuration file has every section
empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xmpp_post.errors import ConfigError


@dataclass(frozen=True)
class Section:
    name: str
    help: str
    parse: Callable[[Mapping[str, Any], Path | None], Any]
    check: Callable[[Any, Any], None] | None = None  # (parsed value, Config)
    always: bool = False  # check even when the table is absent (value None)


@dataclass(frozen=True)
class Sections:
    """The parsed sections, by name; an absent section is empty."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


SECTIONS: dict[str, Section] = {}


def register(section: Section) -> Section:
    """Make a section known to the configuration reader (done once, at import)."""
    SECTIONS[section.name] = section
    return section


def parse_sections(tables: Mapping[str, Any], path: Path | None) -> Sections:
    values: dict[str, Any] = {}
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise ConfigError(name, f"[{name}] must be a table")
        values[name] = SECTIONS[name].parse(table, path)
    return Sections(values)


def check_sections(sections: Sections, config: Any) -> None:
    """Run the cross-checks of every present section (and of those that check always)
    against the whole configuration."""
    for name, section in SECTIONS.items():
        if section.check is not None and (name in sections.values or section.always):
            section.check(sections.get(name), config)
