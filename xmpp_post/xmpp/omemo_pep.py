"""The PEP (XEP-0163) questions OMEMO asks on a client stream: a device list or a bundle
read from an account, our own device list and bundles published or withdrawn.

Built and read here as a few IQs (like ``upload``), no slixmpp pubsub plugin loaded in
the pooled sessions. Both OMEMO versions are served, each with its own nodes:

* ``urn:xmpp:omemo:2`` (twomemo): the device list in ``urn:xmpp:omemo:2:devices`` (item
  ``current``), every bundle in ``urn:xmpp:omemo:2:bundles`` (item = the device id);
* ``eu.siacs.conversations.axolotl`` (oldmemo): the device list in ``….devicelist``
  (item ``current``), a bundle per device in ``….bundles:<device id>``.

What we publish is open to anyone (``pubsub#access_model`` ``open``, as Conversations
publishes), so that a recipient who is not the sender's contact can still read our
keys. A node that already exists with another configuration (``precondition-not-met``)
is configured first, then published to again.

A recipient's node that only its contacts may read answers ``forbidden`` (Prosody's
default access model, ``presence``) or ``not-authorized``; that is ``NotReadable``, so
the relay can say why nothing could be encrypted for them.
"""

from __future__ import annotations

import contextlib
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET

PUBSUB_NS = "http://jabber.org/protocol/pubsub"
OWNER_NS = "http://jabber.org/protocol/pubsub#owner"
ERRORS_NS = "http://jabber.org/protocol/pubsub#errors"
DATA_NS = "jabber:x:data"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"
OPEN = {"pubsub#access_model": "open", "pubsub#persist_items": "true"}
NOT_READABLE = frozenset({"forbidden", "not-authorized", "presence-subscription-required",
                          "not-subscribed", "registration-required"})


class PepProblem(Exception):
    """A PEP question that failed; ``condition`` is the server's, if it answered."""

    def __init__(self, text: str, condition: str = "") -> None:
        super().__init__(text)
        self.condition = condition


class NotFound(PepProblem):
    """No such node or item (``item-not-found``)."""


class NotReadable(PepProblem):
    """The owner's server refused to show the node (it is for its contacts only)."""


def _form(form_type: str, options: dict[str, str]) -> ET.Element:
    form = ET.Element(f"{{{DATA_NS}}}x", {"type": "submit"})
    fields = {"FORM_TYPE": form_type, **options}
    for name, value in fields.items():
        field = ET.SubElement(form, f"{{{DATA_NS}}}field", {"var": name})
        if name == "FORM_TYPE":
            field.set("type", "hidden")
        ET.SubElement(field, f"{{{DATA_NS}}}value").text = value
    return form


async def _ask(client: Any, iq: Any, what: str, timeout: float) -> Any:
    try:
        return await iq.send(timeout=timeout)
    except IqTimeout:
        raise PepProblem(f"{what}: no answer within {timeout:g} s") from None
    except IqError as exc:
        condition = str(exc.condition or "")
        if condition == "item-not-found":
            raise NotFound(f"{what}: no such node", condition) from None
        if condition in NOT_READABLE:
            raise NotReadable(f"{what}: refused ({condition})", condition) from None
        raise PepProblem(f"{what}: refused ({condition or 'error'})", condition) from None


async def read_item(client: Any, owner: str, node: str, item_id: str | None,
                    timeout: float) -> ET.Element | None:
    """The payload of item ``item_id`` of ``owner``'s ``node`` (None: the latest item),
    or None if the node holds none; ``NotFound``, ``NotReadable`` or ``PepProblem``."""
    iq = client.make_iq_get(ito=owner)
    pubsub = ET.Element(f"{{{PUBSUB_NS}}}pubsub")
    items = ET.SubElement(pubsub, f"{{{PUBSUB_NS}}}items", {"node": node})
    if item_id is None:
        items.set("max_items", "1")
    else:
        ET.SubElement(items, f"{{{PUBSUB_NS}}}item", {"id": item_id})
    iq.append(pubsub)
    reply = await _ask(client, iq, f"reading {node} of {owner}", timeout)
    found = reply.xml.findall(f"{{{PUBSUB_NS}}}pubsub/{{{PUBSUB_NS}}}items/{{{PUBSUB_NS}}}item")
    for item in found:
        if item_id is None or item.get("id") == item_id:
            return next(iter(item), None)
    return None


async def publish(client: Any, node: str, item_id: str, payload: ET.Element,
                  timeout: float, options: dict[str, str] | None = None) -> None:
    """Publish ``payload`` as item ``item_id`` of our own ``node``, open to anyone."""
    wanted = {**OPEN, **(options or {})}
    try:
        await _publish(client, node, item_id, payload, wanted, timeout)
    except PepProblem as problem:
        if problem.condition != "conflict":  # an existing node configured otherwise
            raise
        await _configure(client, node, wanted, timeout)
        await _publish(client, node, item_id, payload, wanted, timeout)


async def _publish(client: Any, node: str, item_id: str, payload: ET.Element,
                   options: dict[str, str], timeout: float) -> None:
    iq = client.make_iq_set()
    pubsub = ET.Element(f"{{{PUBSUB_NS}}}pubsub")
    target = ET.SubElement(pubsub, f"{{{PUBSUB_NS}}}publish", {"node": node})
    ET.SubElement(target, f"{{{PUBSUB_NS}}}item", {"id": item_id}).append(payload)
    ET.SubElement(pubsub, f"{{{PUBSUB_NS}}}publish-options").append(
        _form(PUBLISH_OPTIONS, options))
    iq.append(pubsub)
    try:
        await iq.send(timeout=timeout)
    except IqTimeout:
        raise PepProblem(f"publishing {node}: no answer within {timeout:g} s") from None
    except IqError as exc:
        unmet = exc.iq.xml.find(f".//{{{ERRORS_NS}}}precondition-not-met")
        condition = str(exc.condition or "")
        if unmet is not None:
            raise PepProblem(f"publishing {node}: precondition not met", "conflict") from None
        raise PepProblem(f"publishing {node}: refused ({condition})", condition) from None


async def _configure(client: Any, node: str, options: dict[str, str], timeout: float) -> None:
    iq = client.make_iq_set()
    pubsub = ET.Element(f"{{{OWNER_NS}}}pubsub")
    ET.SubElement(pubsub, f"{{{OWNER_NS}}}configure", {"node": node}).append(
        _form(NODE_CONFIG, options))
    iq.append(pubsub)
    await _ask(client, iq, f"configuring {node}", timeout)


async def retract(client: Any, node: str, item_id: str, timeout: float) -> None:
    """Withdraw item ``item_id`` of our own ``node`` (gone already: nothing to do)."""
    iq = client.make_iq_set()
    pubsub = ET.Element(f"{{{PUBSUB_NS}}}pubsub")
    ET.SubElement(ET.SubElement(pubsub, f"{{{PUBSUB_NS}}}retract", {"node": node}),
                  f"{{{PUBSUB_NS}}}item", {"id": item_id})
    iq.append(pubsub)
    with contextlib.suppress(NotFound):
        await _ask(client, iq, f"retracting from {node}", timeout)


async def delete_node(client: Any, node: str, timeout: float) -> None:
    """Delete our own ``node`` (gone already: nothing to do)."""
    iq = client.make_iq_set()
    pubsub = ET.Element(f"{{{OWNER_NS}}}pubsub")
    ET.SubElement(pubsub, f"{{{OWNER_NS}}}delete", {"node": node})
    iq.append(pubsub)
    with contextlib.suppress(NotFound):
        await _ask(client, iq, f"deleting {node}", timeout)
