"""Who an encrypted message to a room is encrypted for: its members, as Conversations does.

Only a room that is members-only (``muc_membersonly``) and non-anonymous
(``muc_nonanonymous``: every occupant sees the others' real JIDs) is encrypted to:
there its members are known and fixed by its admins, so the message is encrypted for
each member's devices (owners, admins and members, read from the room's affiliation
lists, XEP-0045 ``muc#admin``). Any other room is ``OmemoUnavailable`` with the reason.
"""

from __future__ import annotations

from typing import Any

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import ET

from xmpp_post import jids
from xmpp_post.errors import OmemoUnavailable

DISCO_INFO_NS = "http://jabber.org/protocol/disco#info"
ADMIN_NS = "http://jabber.org/protocol/muc#admin"
NEEDED = ("muc_membersonly", "muc_nonanonymous")
AFFILIATIONS = ("owner", "admin", "member")
MAX_MEMBERS = 200  # a bigger room is not encrypted to (each message: a key per device)


async def _get(client: Any, room: str, child: ET.Element, what: str, timeout: float) -> Any:
    iq = client.make_iq_get(ito=room)
    iq.append(child)
    try:
        return await iq.send(timeout=timeout)
    except IqTimeout:
        raise OmemoUnavailable(f"{room} did not answer {what} in time") from None
    except IqError as exc:
        raise OmemoUnavailable(f"{room} refused {what} ({exc.condition}), which encrypting "
                               "to its members needs") from None


async def room_members(client: Any, room: str, sender: str, timeout: float) -> list[str]:
    """The bare JIDs of ``room``'s members but ``sender``; ``OmemoUnavailable`` unless it
    is members-only and non-anonymous and its member lists can be read."""
    info = await _get(client, room, ET.Element(f"{{{DISCO_INFO_NS}}}query"),
                      "its description (disco#info)", timeout)
    features = {feature.get("var") for feature in
                info.xml.findall(f"{{{DISCO_INFO_NS}}}query/{{{DISCO_INFO_NS}}}feature")}
    lacking = [name for name in NEEDED if name not in features]
    if lacking:
        raise OmemoUnavailable(f"{room} is not members-only and non-anonymous (it lacks "
                               f"{', '.join(lacking)}): only such rooms are encrypted to")
    members: set[str] = set()
    for affiliation in AFFILIATIONS:
        query = ET.Element(f"{{{ADMIN_NS}}}query")
        ET.SubElement(query, f"{{{ADMIN_NS}}}item", {"affiliation": affiliation})
        reply = await _get(client, room, query, f"its {affiliation} list", timeout)
        for item in reply.xml.findall(f"{{{ADMIN_NS}}}query/{{{ADMIN_NS}}}item"):
            jid = item.get("jid")
            if jid:
                members.add(jids.bare_of(jid))
        if len(members) > MAX_MEMBERS:
            raise OmemoUnavailable(f"{room} has more than {MAX_MEMBERS} members: too many "
                                   "to encrypt each message for")
    members.discard(sender)
    return sorted(members)
