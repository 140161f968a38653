"""The message fields as OpenAPI schemas, for every front that takes them (the seed API's
requests, the web page's template trial): built from the same rules as the checks in
``fields`` and ``message_request``."""

from __future__ import annotations

from typing import Any

from xmpp_post.model import ENCRYPTIONS, MESSAGE_TYPES

TO = {"type": "string", "minLength": 1,
       "description": "Recipient: full JID, bare JID, or a local part on the sender's domain"}
TOKEN = "^[A-Za-z0-9._:-]{1,%d}$"
BOOL_TEXT = {"type": "string", "enum": ["true", "false", "1", "0", "TRUE", "FALSE", "True",
                                         "False"]}

FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "to": TO,
    "type": {"type": "string", "enum": list(MESSAGE_TYPES),
             "description": "Default: groupchat for a room, chat otherwise"},
    "body": {"type": "string", "minLength": 1,
             "description": "The message text (optional when oob_url is given)"},
    "subject": {"type": "string"},
    "thread": {"type": "string", "pattern": TOKEN % 128},
    "id": {"type": "string", "pattern": TOKEN % 64,
           "description": "Client-chosen stanza id, echoed back"},
    "lang": {"type": "string", "maxLength": 35,
             "pattern": "^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$", "description": "xml:lang"},
    "oob_url": {"type": "string", "format": "uri", "maxLength": 2048, "pattern": "^https?://",
                "description": "XEP-0066 link, also appended to the body"},
    "receipt": {"description": "Ask for a XEP-0184 delivery receipt",
                "oneOf": [{"type": "boolean"}, BOOL_TEXT]},
    "nick": {"type": "string", "maxLength": 64, "description": "Nickname in a group chat"},
    "room_password": {"type": "string", "description": "Password of a protected room"},
    "encrypt": {"type": "string", "enum": list(ENCRYPTIONS),
                "description": "End-to-end encryption: omemo, or none (default: the "
                "gateway's, the account's or the token's; a token's cannot be lowered)"},
}
