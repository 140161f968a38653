"""From a ``Publication`` to the parts of the XMPP message: text, subject and OOB URL.

The text reads, from the top::

    ‼️ 🚨 💀 *Unauthorized access detected*     marker, emoji tags, the title in bold
    Remote access to phils-laptop detected.      the message (Markdown converted)

    🔗 https://home.example.org/                  click
    Open portal: https://home.example.org/       actions, one a line
    📎 diskspace.jpg: https://files.lan/s.jpg     attach
    Tags: mailsrv13, daily-backup                 the tags that are no emoji

Without a title, the marker and emojis start the message's first line.
"""

from __future__ import annotations

from dataclasses import dataclass

from xmpp_post.fronts.ntfy.actions import Action
from xmpp_post.fronts.ntfy.emoji import emoji_for
from xmpp_post.fronts.ntfy.markdown import to_styled_text
from xmpp_post.fronts.ntfy.publish import Publication

MARKERS = {5: "\u203c\ufe0f", 4: "\u2757"}  # ‼️ for max/urgent, ❗ for high
CLICK = "\U0001f517"  # 🔗
ATTACHMENT = "\U0001f4ce"  # 📎
_BLOCKS = ("```", ">")  # XEP-0393 blocks, which must start their line


@dataclass(frozen=True)
class MessageParts:
    """What the gateway's ``OutgoingMessage`` needs from one publication."""

    body: str
    subject: str | None = None
    oob_url: str | None = None


def compose(pub: Publication) -> MessageParts:
    """The text, subject and out-of-band URL of the message ``pub`` asks for."""
    emojis = [emoji for emoji in map(emoji_for, pub.tags) if emoji]
    plain_tags = [tag for tag in pub.tags if emoji_for(tag) is None]
    lead = " ".join(filter(None, [MARKERS.get(pub.priority or 3, ""), *emojis]))
    text = to_styled_text(pub.message) if pub.markdown else pub.message
    if pub.title:
        head = _bold(" ".join(pub.title.split()))
        lines = [f"{lead} {head}" if lead else head, text]
    elif lead and text.startswith(_BLOCKS):
        lines = [lead, text]  # a block keeps its first line to itself
    else:
        lines = [f"{lead} {text}" if lead else text]
    extra: list[str] = []
    if pub.click:
        extra.append(f"{CLICK} {pub.click}")
    extra.extend(action_line(action) for action in pub.actions)
    if pub.attach:
        extra.append(f"{ATTACHMENT} {pub.filename}: {pub.attach}")
    if plain_tags:
        extra.append("Tags: " + ", ".join(plain_tags))
    if extra:
        lines += ["", *extra]
    return MessageParts(body="\n".join(lines), subject=pub.title, oob_url=pub.attach)


def action_line(action: Action) -> str:
    """One action button as a line of text: its label and what it would do."""
    if action.action == "view":
        return f"{action.label}: {action.url}"
    if action.action == "http":
        return f"{action.label}: {action.method or 'POST'} {action.url}"
    return f"{action.label}: an Android broadcast, which only ntfy's app can send"


def _bold(title: str) -> str:
    """``*title*`` (XEP-0393 strong), unless a ``*`` in it would break the span."""
    return title if "*" in title else f"*{title}*"
