"""What may answer a message before its webhook: the built-in alert actions
(``bots.alert_actions.AlertActions``) and any other answerer of the same shape."""

from __future__ import annotations

from typing import Protocol

from xmpp_post.incoming import Incoming


class Answerer(Protocol):
    async def answer(self, message: Incoming) -> str | None:
        """None: not for this answerer (the message goes to the webhook); a text: the
        reply (a result or a refusal), and the webhook never sees the message."""
        ...
