"""From an HTTP request's parts to the message to send: pure functions, no I/O.

Payload formats (chosen by media type): ``text/plain`` (the whole body is the text),
``application/x-www-form-urlencoded`` and ``application/json`` (fields ``to``, ``type``,
``body``). Credentials come from HTTP Basic auth. Everything invalid raises a
``ClientError`` whose status and code word say what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from xmpp_post import jids
from xmpp_post.errors import (
    BadRequest,
    Forbidden,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
)

TEXT = "text/plain"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MEDIA_TYPES = (TEXT, FORM, JSON)
MESSAGE_TYPES = ("chat", "normal", "headline")
FIELDS = ("to", "type", "body")
SENDER_FIELDS = ("from", "sender")
MAX_FORM_FIELDS = 100

# Characters XML 1.0 cannot carry (outside its Char production).
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Credentials:
    """Who is sending: a bare JID and the password that must prove it."""

    jid: str
    password: str = field(repr=False)

    @property
    def domain(self) -> str:
        return jids.domain_of(self.jid)


@dataclass(frozen=True)
class OutgoingMessage:
    """One ``<message/>`` to send, already validated."""

    to: str
    body: str
    type: str = "chat"


def credentials(header: str | None, domains: tuple[str, ...]) -> Credentials:
    """Parse ``Authorization: Basic`` into credentials of a served domain."""
    if not header:
        raise Unauthorized("HTTP Basic credentials (user@domain:password) are required")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise Unauthorized("only HTTP Basic authentication is supported")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("the Basic credentials are not valid base64 of UTF-8 text") from None
    user, colon, password = decoded.partition(":")
    if not colon or not user or not password:
        raise Unauthorized("credentials must be user@domain:password")
    try:
        jid = jids.account(user, domains[0])
    except jids.JidError:
        raise Unauthorized("the user name is not a valid XMPP address") from None
    if jids.domain_of(jid) not in domains:
        raise Forbidden(f"this gateway does not serve the domain {jids.domain_of(jid)!r}",
                        code="domain_not_served")
    return Credentials(jid, password)


def message(media_type: str, charset: str | None, body: bytes,
            path_recipient: str | None, sender: Credentials) -> OutgoingMessage:
    """Build the message a request asks for, or raise the ClientError that says why not."""
    fields = _fields(media_type, charset, body)
    for name in SENDER_FIELDS:
        if name in fields:
            raise BadRequest(f"the field {name!r} is not allowed: the sender is always the "
                             "authenticated user", code="sender_field")
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; fields are {', '.join(FIELDS)}",
                         code="unknown_field")
    to = _recipient(path_recipient, fields.get("to"), sender.domain)
    kind = fields.get("type") or "chat"
    if kind not in MESSAGE_TYPES:
        raise BadRequest(f"type must be one of {', '.join(MESSAGE_TYPES)}, not {kind!r}",
                         code="invalid_type")
    text = fields.get("body")
    if text is None or not text.strip():
        raise Unprocessable("the message has no text", code="missing_body")
    _check_xml_chars("body", text)
    return OutgoingMessage(to=to, body=text, type=kind)


def _fields(media_type: str, charset: str | None, body: bytes) -> dict[str, str]:
    if media_type == TEXT:
        return {"body": _decode(body, charset or "utf-8")}
    if media_type == FORM:
        return _form_fields(body)
    if media_type == JSON:
        return _json_fields(body)
    shown = media_type or "none"
    raise UnsupportedMediaType(
        f"Content-Type {shown!r} is not supported; use one of {', '.join(MEDIA_TYPES)}")


def _decode(body: bytes, charset: str) -> str:
    try:
        codecs.lookup(charset)
    except LookupError:
        raise UnsupportedMediaType(f"unknown charset {charset!r}", code="unsupported_charset") \
            from None
    try:
        return body.decode(charset)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(f"the body is not valid {charset}", code="invalid_encoding") from None


def _form_fields(body: bytes) -> dict[str, str]:
    text = _decode(body, "utf-8")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                          encoding="utf-8", errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise BadRequest("a form value is not valid UTF-8 after percent-decoding",
                         code="invalid_encoding") from None
    except ValueError:
        raise BadRequest("the form body must be name=value pairs joined by '&' (to send "
                         "raw text, use Content-Type: text/plain)", code="invalid_form") \
            from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise BadRequest(f"the field {name!r} is given more than once",
                             code="duplicate_field")
        fields[name] = value
    return fields


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise BadRequest(f"the field {name!r} is given more than once",
                             code="duplicate_field")
        out[name] = value
    return out


def _json_fields(body: bytes) -> dict[str, str]:
    try:
        data = json.loads(body, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, BadRequest):
            raise
        raise BadRequest("the body is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("the JSON body must be an object", code="invalid_json")
    fields: dict[str, str] = {}
    for name, value in data.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadRequest(f"the field {name!r} must be a string", code="invalid_field")
        fields[name] = value
    return fields


def _recipient(from_path: str | None, from_body: str | None, sender_domain: str) -> str:
    candidates = [c for c in (from_path, from_body) if c]
    if not candidates:
        raise Unprocessable("no recipient: post to <base path>/<recipient> or give 'to'",
                            code="missing_recipient")
    found = []
    for text in candidates:
        _check_xml_chars("to", text)
        try:
            found.append(jids.recipient(text, sender_domain))
        except jids.JidError as exc:
            raise BadRequest(f"invalid recipient {text!r}: {exc}", code="invalid_jid") from None
    if len(set(found)) > 1:
        raise BadRequest("the recipient in the path and the 'to' field differ",
                         code="conflicting_recipient")
    return found[0]


def _check_xml_chars(name: str, text: str) -> None:
    bad = _NOT_XML_CHAR.search(text)
    if bad:
        raise BadRequest(f"the {name} contains the character U+{ord(bad.group()):04X}, "
                         "which XML cannot carry", code="invalid_character")
