"""From an HTTP request's parts to the message to send: pure functions, no I/O.

Payload formats (chosen by media type): ``text/plain`` (the whole body is the text),
``application/x-www-form-urlencoded`` and ``application/json`` (fields in ``FIELDS``).
Every format also takes fields from the URL's query string (``/msg/bob?subject=Hi``); a
field given twice is refused. Everything invalid raises a ``ClientError`` whose kind and
code word say what is wrong; who sends is ``xmpp_post.auth``'s business.

``messages()`` is the full parser: several recipients (``to`` repeated in a form or the
query, a JSON array, or a comma-separated path) become one ``OutgoingMessage`` each, and
with several recipients an invalid one becomes a ``Rejected`` entry instead of failing the
whole request. ``message()`` is the single-recipient form. The optional fields are
checked in ``fields.py``.

Text is decoded strictly: a body in a ``charset`` that is not a text encoding (``rot13``,
``base64``, ``zlib``: Python codecs, but not for text) is 415 ``unsupported_charset``; a
body, query or path whose bytes are not valid in their encoding is 400
``invalid_encoding``. A UTF-8 byte-order mark at the start of a text or form body is
dropped (editors on some systems write one), not delivered as U+FEFF.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from xmpp_post import charsets, jids
from xmpp_post.errors import (
    BadRequest,
    ClientError,
    NotFound,
    Unprocessable,
    UnsupportedMediaType,
)
from xmpp_post.fronts import fields as check
from xmpp_post.model import (
    MESSAGE_TYPES,
    OutgoingMessage,
    Rejected,
    Sender,
    check_room_rules,
    check_xml_text,
)

TEXT = "text/plain"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
FORM_DATA = "multipart/form-data"  # with files: read as it arrives (``uploads``)
MEDIA_TYPES = (TEXT, FORM, JSON, FORM_DATA)
FIELDS = ("to", "type", "body", "subject", "thread", "id", "lang", "oob_url", "receipt",
          "nick", "room_password", "encrypt")
SENDER_FIELDS = ("from", "sender")
MAX_FORM_FIELDS = 100
MAX_RECIPIENTS = 50
BOM = "\ufeff"



@dataclass(frozen=True)
class MessageRequest:
    """What one HTTP request asks for: a message per recipient, in the order given.

    ``several`` is true when the request named more than one recipient or gave ``to``
    as a JSON array; the response then lists an outcome per recipient.
    """

    items: tuple[OutgoingMessage | Rejected, ...]
    several: bool


def message(media_type: str, charset: str | None, body: bytes,
            path_recipient: str | None, sender: Sender) -> OutgoingMessage:
    """Build the one message a request asks for, or raise the ClientError that says why not."""
    parsed = messages(media_type, charset, body, path_recipient, sender)
    if parsed.several:
        raise BadRequest("this endpoint takes one recipient", code="several_recipients")
    item = parsed.items[0]
    if isinstance(item, Rejected):
        raise item.error
    return item


def messages(media_type: str, charset: str | None, body: bytes,
             path_recipients: str | None, sender: Sender, *, query: str = "",
             default_nick: str = "", max_recipients: int = MAX_RECIPIENTS) -> MessageRequest:
    """Build the messages a request asks for, or raise the ClientError that says why not."""
    fields, recipients, listed = _fields(media_type, charset, body)
    recipients = _with_query(fields, recipients, query)
    return from_fields(fields, recipients, path_recipients, sender, listed=listed,
                       default_nick=default_nick, max_recipients=max_recipients)


def _with_query(fields: dict[str, str], recipients: list[str], query: str) -> list[str]:
    """Merge the query string's fields into ``fields``; the recipients, from the body or
    else from the query (naming them in both is refused)."""
    if not query:
        return recipients
    extra, extra_to = query_fields(query)
    _merge(fields, extra)
    if extra_to and recipients:
        raise BadRequest("the field 'to' is given both in the query string and the body",
                         code="duplicate_field")
    return recipients or extra_to


def form_data_messages(pairs: list[tuple[str, str]], path_recipients: str | None,
                       sender: Sender, *, query: str = "", default_nick: str = "",
                       max_recipients: int = MAX_RECIPIENTS,
                       with_files: bool = False) -> MessageRequest:
    """The messages the text fields of a ``multipart/form-data`` body ask for (the same
    fields as a form's); ``with_files``: the request carries files, so no text is needed."""
    fields, recipients = _pair_fields(pairs)
    recipients = _with_query(fields, recipients, query)
    return from_fields(fields, recipients, path_recipients, sender, default_nick=default_nick,
                       max_recipients=max_recipients, with_files=with_files)


def from_fields(fields: dict[str, str], recipients: list[str], path_recipients: str | None,
                sender: Sender, *, listed: bool = False, default_nick: str = "",
                max_recipients: int = MAX_RECIPIENTS,
                with_files: bool = False) -> MessageRequest:
    """The messages that ``fields`` (by name, ``to`` left out) ask for, to ``recipients``
    (``to`` values; ``listed``: given as a JSON array) or the comma-separated
    ``path_recipients``: the validation shared by every way of asking. ``with_files``:
    files go with the text, which may then be empty (the messages' body is "")."""
    for name in SENDER_FIELDS:
        if name in fields:
            raise BadRequest(f"the field {name!r} is not allowed: the sender is always the "
                             "authenticated user", code="sender_field")
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; fields are {', '.join(FIELDS)}",
                         code="unknown_field")
    template = _template(fields, sender, default_nick, with_files)
    kind = template["type"]
    from_path = path_recipients.split(",") if path_recipients else []
    several = listed or len(from_path) > 1 or len(recipients) > 1
    targets = _recipients(from_path, recipients, sender.domain, several, max_recipients)
    items: list[OutgoingMessage | Rejected] = []
    for target in targets:
        if isinstance(target, Rejected):
            items.append(target)
        elif kind == "groupchat" and not jids.is_bare(target):
            error = BadRequest(f"a groupchat message goes to a room's bare JID, not {target!r}",
                               code="invalid_room")
            if not several:
                raise error
            items.append(Rejected(target, error))
        else:
            items.append(OutgoingMessage(to=target, **template))
    return MessageRequest(tuple(items), several)


def _template(fields: dict[str, str], sender: Sender, default_nick: str,
              with_files: bool = False) -> dict[str, Any]:
    """The message without its recipient: every field but ``to``, validated (as the
    keyword arguments of ``OutgoingMessage``: built once per recipient, not copied)."""
    kind = fields.get("type") or ""
    if kind and kind not in MESSAGE_TYPES:
        raise BadRequest(f"type must be one of {', '.join(MESSAGE_TYPES)}, not {kind!r}",
                         code="invalid_type")
    for name in ("body", "subject", "room_password"):
        if fields.get(name):
            check_xml_text(name, fields[name])
    url = check.oob_url(fields["oob_url"]) if fields.get("oob_url") else None
    text = fields.get("body")
    if url is not None:
        text = check.with_url(text, url)
    if text is None or not text.strip():
        if not with_files:
            raise Unprocessable("the message has no text", code="missing_body")
        text = ""  # only the files are sent
    want_receipt = check.receipt(fields["receipt"]) if fields.get("receipt") else False
    check_room_rules(kind, want_receipt)
    nick = check.nick(fields.get("nick") or default_nick or jids.local_of(sender.jid))
    asked = check.encrypt(fields["encrypt"]) if fields.get("encrypt") else None
    return {
        "body": text, "type": kind or "chat", "explicit_type": bool(kind),
        "subject": fields.get("subject") or None,
        "thread": check.thread(fields["thread"]) if fields.get("thread") else None,
        "id": check.stanza_id(fields["id"]) if fields.get("id") else None,
        "lang": check.lang(fields["lang"]) if fields.get("lang") else None,
        "oob_url": url, "receipt": want_receipt, "nick": nick,
        "room_password": fields.get("room_password") or None,
        "encrypt": sender.scope.encryption_for(asked, sender.encrypt),
    }


Fields = tuple[dict[str, str], list[str], bool]  # fields, recipients, `to` was a JSON array


def path_recipients(raw_path: str, base_path: str) -> str | None:
    """The recipients in a request path (what follows ``<base path>/``), percent-decoded
    as UTF-8; None when there are none (``POST /msg/`` is ``POST /msg``)."""
    path = raw_path.partition("?")[0].partition("#")[0]
    try:
        text = unquote_to_bytes(path.encode("utf-8", "surrogateescape")).decode("utf-8")
    except UnicodeError:
        raise BadRequest("the path is not valid UTF-8 after percent-decoding",
                         code="invalid_encoding") from None
    prefix = base_path.rstrip("/") + "/"
    if not text.startswith(prefix):
        raise NotFound("no such endpoint")
    return text[len(prefix):] or None


def _fields(media_type: str, charset: str | None, body: bytes) -> Fields:
    if media_type == TEXT:
        return {"body": _without_bom(_decode(body, charset or "utf-8"))}, [], False
    if media_type == FORM:
        fields, to = _form_fields(_without_bom(_decode(body, "utf-8")), "form")
        return fields, to, False
    if media_type == JSON:
        return _json_fields(body)
    if media_type == FORM_DATA:  # read by uploads before the handler: never here
        raise BadRequest("this request cannot carry multipart/form-data",
                         code="invalid_form")
    check_media_type(media_type)
    raise AssertionError("unreachable")


def check_media_type(media_type: str) -> None:
    """415 unless the media type is one the gateway parses (before reading any body)."""
    if media_type not in MEDIA_TYPES:
        shown = media_type or "none"
        raise UnsupportedMediaType(
            f"Content-Type {shown!r} is not supported; use one of {', '.join(MEDIA_TYPES)}")


def _decode(body: bytes, charset: str) -> str:
    try:
        return charsets.decode(body, charset)
    except LookupError:  # unknown, slow, or a codec that does not decode bytes to text
        raise UnsupportedMediaType(f"unsupported charset {charset!r}: not a text encoding "
                                   "Python knows", code="unsupported_charset") from None
    except (UnicodeError, ValueError):
        raise BadRequest(f"the body is not valid {charset}", code="invalid_encoding") from None


def _without_bom(text: str) -> str:
    return text[1:] if text.startswith(BOM) else text


def query_fields(query: str) -> tuple[dict[str, str], list[str]]:
    """The fields of a query string by name, and its ``to`` values (400 when malformed,
    a field other than ``to`` repeated, or not UTF-8)."""
    return _form_fields(query, "query string")


def _merge(fields: dict[str, str], extra: dict[str, str]) -> None:
    for name, value in extra.items():
        if name in fields:
            raise BadRequest(f"the field {name!r} is given both in the query string and "
                             "the body", code="duplicate_field")
        fields[name] = value


def _form_fields(text: str, where: str) -> tuple[dict[str, str], list[str]]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                          encoding="utf-8", errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise BadRequest(f"a {where} value is not valid UTF-8 after percent-decoding",
                         code="invalid_encoding") from None
    except ValueError:
        raise BadRequest(f"the {where} must be name=value pairs joined by '&' (to send "
                         "raw text, use Content-Type: text/plain)", code="invalid_form") \
            from None
    return _pair_fields(pairs)


def _pair_fields(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """A form's fields by name, and its ``to`` values; a field other than ``to`` given
    twice is refused."""
    if len(pairs) > MAX_FORM_FIELDS:
        raise BadRequest(f"a form of at most {MAX_FORM_FIELDS} fields is accepted",
                         code="invalid_form")
    fields: dict[str, str] = {}
    recipients: list[str] = []
    for name, value in pairs:
        if name == "to":
            if value:  # an empty field counts as absent, as every other field
                recipients.append(value)
            continue
        if name in fields:
            raise BadRequest(f"the field {name!r} is given more than once",
                             code="duplicate_field")
        fields[name] = value
    return fields, recipients


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise BadRequest(f"the field {name!r} is given more than once",
                             code="duplicate_field")
        out[name] = value
    return out


def _json_fields(body: bytes) -> Fields:
    try:
        data = json.loads(body, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, BadRequest):
            raise
        raise BadRequest("the body is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("the JSON body must be an object", code="invalid_json")
    fields: dict[str, str] = {}
    recipients: list[str] = []
    listed = False
    for name, value in data.items():
        if value is None:
            continue
        if name == "to" and isinstance(value, list):
            if not all(isinstance(item, str) for item in value):
                raise BadRequest("'to' must be a string or an array of strings",
                                 code="invalid_field")
            recipients, listed = list(value), True
        elif name == "receipt" and isinstance(value, bool):
            fields[name] = "true" if value else "false"
        elif not isinstance(value, str):
            raise BadRequest(f"the field {name!r} must be a string", code="invalid_field")
        elif name == "to":
            recipients = [value] if value else []
        else:
            fields[name] = value
    return fields, recipients, listed


def _recipients(from_path: list[str], from_fields: list[str], sender_domain: str,
                several: bool, limit: int) -> list[str | Rejected]:
    """Normalized, de-duplicated recipients; invalid ones are Rejected when several."""
    if not from_path and not from_fields:
        raise Unprocessable("no recipient: post to <base path>/<recipient> or give 'to'",
                            code="missing_recipient")
    count = max(len(from_path), len(from_fields))
    if count > limit:
        raise BadRequest(f"{count} recipients; at most {limit} are allowed in one request",
                         code="too_many_recipients")
    path_found = [_one_recipient(t, sender_domain, several) for t in from_path]
    field_found = [_one_recipient(t, sender_domain, several) for t in from_fields]
    if path_found and field_found and _keys(path_found) != _keys(field_found):
        raise BadRequest("the recipient in the path and the 'to' field differ",
                         code="conflicting_recipient")
    unique: dict[str, str | Rejected] = {}
    for found in path_found or field_found:
        key = found if isinstance(found, str) else "\0" + found.to
        unique.setdefault(key, found)
    return list(unique.values())


def _keys(found: list[str | Rejected]) -> set[str]:
    return {f if isinstance(f, str) else "\0" + f.to for f in found}


def _one_recipient(text: str, sender_domain: str, several: bool) -> str | Rejected:
    try:
        check_xml_text("to", text)
        if not text.strip():
            raise BadRequest("a recipient is empty", code="invalid_jid")
        try:
            return jids.recipient(text, sender_domain)
        except jids.JidError as exc:
            raise BadRequest(f"invalid recipient {text!r}: {exc}", code="invalid_jid") \
                from None
    except ClientError as error:
        if not several:
            raise
        return Rejected(text, error)

