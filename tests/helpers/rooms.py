"""Rooms on the test server: fresh names, and a room whose owner stays in it."""

from __future__ import annotations

import itertools

from tests.helpers import AccountFactory, ReceiverFactory
from xmpp_post.lab.prosody import ProsodyServer
from xmpp_post.lab.receiver import Receiver

_rooms = itertools.count()


def new_room(prosody: ProsodyServer, name: str = "room") -> str:
    return f"{name}{next(_rooms)}@{prosody.muc_domain}"


async def owned_room(prosody: ProsodyServer, account: AccountFactory,
                     receiver: ReceiverFactory, **options: str) -> tuple[str, Receiver]:
    """A fresh room, configured with ``options``, whose owner stays in it listening."""
    owner = await receiver(account("owner"))
    room = new_room(prosody)
    await owner.create_room(room, "owner", **options)
    return room, owner
