"""One table from XMPP's error conditions to the gateway's errors.

The XMPP side reports what the server said, by kind and condition; it never picks an
HTTP status (``http.render`` does, from the same kind and condition).
"""

from __future__ import annotations

from xmpp_post.errors import (
    GatewayError,
    LoginRefused,
    RecipientBusy,
    RecipientRefused,
    RoomRefused,
    XmppUnavailable,
)

# SASL failures that say "try again later" rather than "wrong password" (RFC 6120 6.5).
TRANSIENT_AUTH = frozenset({"temporary-auth-failure", "aborted"})

# A room's refusal of a join (presence error condition) -> (code word, what it means).
ROOM_JOIN: dict[str, tuple[str, str]] = {
    "item-not-found": ("room_not_found", "the room does not exist"),
    "registration-required": ("room_members_only",
                              "the room is members-only and the sender is not a member"),
    "forbidden": ("room_banned", "the sender is banned from the room"),
    "not-authorized": ("room_password",
                       "the room needs a password and the one given is missing or wrong"),
    "not-allowed": ("room_not_found", "the room does not exist and may not be created"),
    "service-unavailable": ("room_full", "the room is full"),
    "jid-malformed": ("invalid_nick", "the room refused the nickname"),
    "not-acceptable": ("room_refused", "the room refused the sender"),
}


def login_failed(condition: str, retry_after: int) -> GatewayError:
    """The server's SASL failure: a refused login, or a transient failure to retry."""
    if condition in TRANSIENT_AUTH:
        return XmppUnavailable("the XMPP server could not check the password right now",
                               code="auth_unavailable", retry_after=retry_after,
                               condition=condition)
    return LoginRefused("the XMPP server rejected the credentials", condition=condition)


def room_join_refused(room: str, condition: str, text: str) -> RoomRefused:
    code, meaning = ROOM_JOIN.get(condition, ("room_join_refused", "the room refused the join"))
    detail = f" (server: {condition}" + (f": {text})" if text else ")")
    return RoomRefused(f"{room}: {meaning}{detail}", code=code, condition=condition, text=text)


def room_message_refused(room: str, condition: str, text: str) -> RoomRefused:
    return RoomRefused(f"the room {room} refused the message ({condition})"
                       + (f": {text}" if text else ""), code="room_refused_message",
                       condition=condition, text=text)


# A server's refusal of a message (``<message type='error'/>``) -> (code word, meaning).
RECIPIENT: dict[str, tuple[str, str]] = {
    "service-unavailable": ("recipient_unavailable",
                            "no such account, or it refuses messages from the sender "
                            "(blocked, or its offline storage is full); servers do not "
                            "say which"),
    "item-not-found": ("recipient_not_found", "no such recipient"),
    "remote-server-not-found": ("recipient_server_not_found",
                                "the recipient's server does not exist or cannot be reached"),
    "remote-server-timeout": ("recipient_server_timeout",
                              "the recipient's server did not answer in time"),
    "jid-malformed": ("invalid_jid", "the server does not accept the address"),
    "gone": ("recipient_gone", "the address is no longer in use"),
}
# Conditions that say "not now" whatever the error type claims (RFC 6120, 8.3.3).
TRANSIENT_STANZA = frozenset({"resource-constraint", "remote-server-timeout"})
BLOCKED_NS = "urn:xmpp:blocking:errors"  # XEP-0191: the sender blocks the recipient
MAX_TEXT = 200  # of the server's text, kept in the answer and the log


def recipient_refused(to: str, condition: str, error_type: str, text: str, *,
                      blocked: bool = False, retry_after: int = 5) -> RecipientRefused:
    """The server's error for a message to ``to``: final, or (type ``wait``) for now."""
    text = text[:MAX_TEXT]
    code, meaning = RECIPIENT.get(condition, ("recipient_refused", "the server refused it"))
    if blocked:
        code, meaning = "recipient_blocked", "the sender blocks the recipient (XEP-0191)"
    detail = f"{condition}: {text}" if text else condition
    message = f"the XMPP server did not deliver the message to {to}: {meaning} ({detail})"
    if error_type == "wait" or condition in TRANSIENT_STANZA:
        if code == "recipient_refused":
            code = "recipient_busy"
        return RecipientBusy(message + "; retry later", code=code, condition=condition,
                             text=text, retry_after=retry_after)
    return RecipientRefused(message, code=code, condition=condition, text=text)
