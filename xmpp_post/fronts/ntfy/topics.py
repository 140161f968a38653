"""Who receives what is published to a topic, and the ``[topics]`` table that says so.

::

    [topics]
    ops = ["ops@conference.example.org", "alice@example.org"]
    backups = ["bob@example.org"]

A topic in the table goes to its JIDs (a room gets a group chat message, as anywhere in
the gateway); any other topic goes to the user with that localpart on the sender's
domain: ``bob`` is ``bob@<sender's domain>``. Table names are matched case-insensitively
(a localpart is case-insensitive too, so ``Ops`` must not slip past the ``ops`` entry).
"""

from __future__ import annotations

from collections.abc import Mapping

from xmpp_post import jids
from xmpp_post.errors import BadRequest, ConfigError
from xmpp_post.fronts.ntfy.publish import TOPIC

SETTING = "topics"
MAX_JIDS = 50  # as many as one request may name (--max-recipients' default)
# Never topics: the gateway's own paths (``openapi.json`` cannot be a topic name), and
# the names of paths it may grow. The base path's first segment joins them
# (``reserved_names``); a test checks that every route of the app is covered.
GATEWAY_PATHS = frozenset({"healthz", "readyz", "metrics", "hooks", "templates", "web",
                           "v1"})


def reserved_names(base_path: str) -> frozenset[str]:
    """The names that are not topics when the message API lives at ``base_path``."""
    first = base_path.strip("/").partition("/")[0].lower()
    return GATEWAY_PATHS | {first} if first else GATEWAY_PATHS


def recipients_for(topic: str, topics: Mapping[str, tuple[str, ...]],
                   sender_domain: str) -> list[str]:
    """The bare JIDs a publication to ``topic`` goes to; ``topics`` is validated."""
    for name, targets in topics.items():
        if name.lower() == topic.lower():
            return list(targets)
    if not TOPIC.fullmatch(topic):
        raise BadRequest("a topic is 1 to 64 letters, digits, '-' and '_'",
                         code="invalid_topic")
    try:
        return [jids.account(topic, sender_domain)]
    except jids.JidError as exc:
        raise BadRequest(f"the topic {topic!r} is not a valid XMPP user name: {exc}",
                         code="invalid_topic") from None


def validate_topics(table: object, *,
                    reserved: frozenset[str] = frozenset()) -> dict[str, tuple[str, ...]]:
    """The ``[topics]`` table checked and normalized, or ``ConfigError("topics", …)``.

    Each name must be a topic name (1-64 of ``A-Z a-z 0-9 - _``), not reserved and not
    the same as another name but for case; each value a non-empty array of at most
    ``MAX_JIDS`` bare JIDs (``user@domain``, a room's ``room@service``), de-duplicated.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(SETTING, "must be a table of topic = [JIDs]")
    lowered_reserved = {name.lower() for name in reserved}
    seen: set[str] = set()
    out: dict[str, tuple[str, ...]] = {}
    for name, value in table.items():
        if not isinstance(name, str) or not TOPIC.fullmatch(name):
            raise ConfigError(SETTING, f"{name!r} is not a topic name (1 to 64 letters, "
                                       "digits, '-' and '_')")
        if name.lower() in lowered_reserved:
            raise ConfigError(SETTING, f"{name!r} is one of the gateway's own paths")
        if name.lower() in seen:
            raise ConfigError(SETTING, f"{name!r} is listed twice (names ignore case)")
        seen.add(name.lower())
        out[name] = _targets(name, value)
    return out


def _targets(name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(SETTING, f"{name}: must be a non-empty array of JIDs")
    if len(value) > MAX_JIDS:
        raise ConfigError(SETTING, f"{name}: at most {MAX_JIDS} JIDs")
    targets: list[str] = []
    for item in value:
        if not isinstance(item, str) or "@" not in item:
            raise ConfigError(SETTING, f"{name}: {item!r} is not a bare JID (user@domain)")
        try:
            targets.append(jids.account(item.strip(), ""))
        except jids.JidError as exc:
            raise ConfigError(SETTING, f"{name}: {item!r} is not a bare JID ({exc})") \
                from None
    return tuple(dict.fromkeys(targets))
