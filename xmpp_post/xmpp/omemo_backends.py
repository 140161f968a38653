"""Which OMEMO versions this install speaks: the one place that decides (docs/omemo.md).

* ``urn:xmpp:omemo:2`` (OMEMO 2): the ``twomemo`` backend (MIT), always installed;
* ``eu.siacs.conversations.axolotl`` (OMEMO 0.3, what Conversations, Dino and Gajim
  speak today): the ``oldmemo`` backend, AGPL-3.0, so only with the extra
  ``xmpp-post[oldmemo]``. The default install holds no AGPL code.

Without ``oldmemo`` the gateway's device is an OMEMO 2 device only, and a recipient
whose devices speak only 0.3 is told so (``without_0_3``) instead of "no device".
The rest of the code asks here, never ``import oldmemo`` itself; tests replace
``oldmemo_module`` to act as an install without the extra.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import twomemo
import twomemo.etree

TWOMEMO = "urn:xmpp:omemo:2"
OLDMEMO = "eu.siacs.conversations.axolotl"
EXTRA = "oldmemo"
NAMES = {TWOMEMO: "OMEMO 2 (urn:xmpp:omemo:2)",
         OLDMEMO: "OMEMO 0.3 (eu.siacs.conversations.axolotl)"}

log = logging.getLogger(__name__)


def _load_oldmemo() -> ModuleType | None:
    try:
        import oldmemo  # optional: the extra oldmemo
        import oldmemo.etree
    except ImportError:
        return None
    return oldmemo


oldmemo_module: ModuleType | None = _load_oldmemo()


def has_0_3() -> bool:
    """Whether OMEMO 0.3 is installed (the extra ``oldmemo``)."""
    return oldmemo_module is not None


def modules() -> dict[str, ModuleType]:
    """Each installed version's backend module, by namespace, the newest first (a device
    that offers several gets the first)."""
    found: dict[str, ModuleType] = {TWOMEMO: twomemo}
    if oldmemo_module is not None:
        found[OLDMEMO] = oldmemo_module
    return found


def namespaces() -> list[str]:
    """The installed versions' namespaces, the newest first."""
    return list(modules())


def module(namespace: str) -> ModuleType | None:
    """The backend module of ``namespace``, or None if this install lacks it."""
    return modules().get(namespace)


def backends(storage: Any) -> list[Any]:
    """One python-omemo ``Backend`` per installed version, over ``storage``."""
    made: list[Any] = [twomemo.Twomemo(storage)]
    if oldmemo_module is not None:
        made.append(oldmemo_module.Oldmemo(storage))
    return made


def without_0_3(recipient: str) -> str:
    """Why a recipient whose devices speak only OMEMO 0.3 cannot be reached."""
    return (f"{recipient}'s OMEMO devices speak only OMEMO 0.3 "
            "(eu.siacs.conversations.axolotl), and this gateway lacks OMEMO 0.3 support: "
            f"install it with pip install 'xmpp-post[{EXTRA}]' (its backend is AGPL-3.0, "
            "so it is not in the default install)")


def describe() -> str:
    """The versions this install speaks, for the log at start."""
    spoken = ", ".join(NAMES[namespace] for namespace in modules())
    if has_0_3():
        return f"OMEMO versions available: {spoken}"
    return (f"OMEMO versions available: {spoken}; not OMEMO 0.3, which Conversations, Dino "
            f"and Gajim speak (pip install 'xmpp-post[{EXTRA}]' adds it)")


def log_available() -> None:
    log.info("%s", describe())
