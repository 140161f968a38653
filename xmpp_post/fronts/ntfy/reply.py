"""The answers an ntfy client expects: the message object on success, errors with codes.

Success is ntfy's JSON message object, empty members left out as ntfy does::

    {"id": "hRBlpnbAn8Eh", "time": 1700000000, "event": "message", "topic": "ops",
     "title": "Disk full", "message": "db1: /var at 91%", "priority": 4,
     "tags": ["warning", "db1"], "click": "https://…", "icon": "https://…",
     "actions": [{"id": "…", "action": "view", "label": "Open", "clear": false,
                  "url": "https://…"}],
     "attachment": {"name": "graph.png", "url": "https://…"},
     "content_type": "text/markdown"}

A file sent as the body (uploaded with XEP-0363) is the ``attachment`` with its
``name``, ``type``, ``size`` and download ``url``; its ``expires`` is left out, since
XEP-0363 gives the uploader no expiry. The message's own ``expires`` is left out too:
the gateway keeps no messages (ntfy leaves it out too when it does not cache).

An error keeps the gateway's shape, ``{"error": code, "message": text}``, plus ntfy's
``http`` (the status) and ``code`` (a five-digit number): ntfy's own number where ntfy
has the same error, else one of ours, ``status * 100 + n`` with an ``n`` ntfy does not
use; any other error is ``status * 100``.
"""

from __future__ import annotations

import secrets
import string

from xmpp_post.errors import GatewayError
from xmpp_post.files import UploadedFile
from xmpp_post.fronts.ntfy.actions import Action
from xmpp_post.fronts.ntfy.publish import MARKDOWN_TYPE, Publication

MESSAGE_ID_LENGTH = 12
ACTION_ID_LENGTH = 10
_ALPHABET = string.ascii_letters + string.digits

NTFY_CODES: dict[str, int] = {
    "bad_request": 40000,
    "invalid_priority": 40007,  # ntfy's numbers from here …
    "invalid_topic": 40009,
    "topic_reserved": 40010,
    "invalid_encoding": 40011,
    "invalid_attach": 40013,
    "invalid_json": 40017,
    "invalid_actions": 40018,
    "unsupported_field": 40050,  # … ours from here
    "invalid_character": 40051,
    "invalid_click": 40052,
    "attachment_not_supported": 40053,
    "unauthorized": 40101,
    "invalid_credentials": 40101,
    "invalid_auth_param": 40150,
    "forbidden": 40301,
    "domain_not_served": 40350,
    "not_found": 40401,
    "method_not_allowed": 40501,
    "file_too_large": 41301,  # ntfy's "attachment too large"
    "payload_too_large": 41350,
    "message_too_long": 41351,
    "unsupported_media_type": 41501,
    "unsupported_charset": 41502,
    "too_many_failed_logins": 42909,
}


def new_id(length: int = MESSAGE_ID_LENGTH) -> str:
    """A random id of letters and digits, as ntfy makes them (12 for a message)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def reply(pub: Publication, message_id: str, now: float,
          uploaded: UploadedFile | None = None) -> dict[str, object]:
    """ntfy's message object for ``pub``, published at unix time ``now``; ``uploaded``:
    the file the body was, on the sender's upload service."""
    out: dict[str, object] = {"id": message_id, "time": int(now), "event": "message",
                              "topic": pub.topic}
    if pub.title:
        out["title"] = pub.title
    out["message"] = pub.message
    if pub.priority:
        out["priority"] = pub.priority
    if pub.tags:
        out["tags"] = list(pub.tags)
    if pub.click:
        out["click"] = pub.click
    if pub.icon:
        out["icon"] = pub.icon
    if pub.actions:
        out["actions"] = [action_object(action) for action in pub.actions]
    if pub.attach:
        out["attachment"] = {"name": pub.filename or "attachment", "url": pub.attach}
    elif uploaded is not None:
        out["attachment"] = {"name": uploaded.name, "type": uploaded.content_type,
                             "size": uploaded.size, "url": uploaded.url}
    if pub.markdown:
        out["content_type"] = MARKDOWN_TYPE
    return out


def action_object(action: Action) -> dict[str, object]:
    """One action as ntfy echoes it, with a fresh id."""
    out: dict[str, object] = {"id": new_id(ACTION_ID_LENGTH), "action": action.action,
                              "label": action.label, "clear": action.clear}
    for name in ("url", "method"):
        if getattr(action, name):
            out[name] = getattr(action, name)
    if action.headers:
        out["headers"] = dict(action.headers)
    for name in ("body", "intent"):
        if getattr(action, name):
            out[name] = getattr(action, name)
    if action.extras:
        out["extras"] = dict(action.extras)
    return out


def error_body(err: GatewayError, status: int) -> dict[str, object]:
    """The JSON an ntfy client gets for ``err`` answered with ``status`` (the HTTP edge
    picks it): the gateway's shape plus ``http`` and ``code``."""
    body = err.body()
    body["http"] = status
    body["code"] = NTFY_CODES.get(err.code, status * 100)
    return body
