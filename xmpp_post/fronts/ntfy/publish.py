"""From the parts of an ntfy publish request to a ``Publication``: pure, no I/O.

The three forms, as ntfy serves them at the root of the listener:

* ``PUT|POST /`` with a JSON object (``topic`` is required; unknown members are ignored);
* ``PUT|POST /<topic>``: the body is the message, whatever its Content-Type;
* ``GET|POST /<topic>/publish`` (or ``/send``, ``/trigger``): the webhook form, usually
  with ``?message=``.

Parameters come from the JSON object first, then the headers, then the query string
(see ``params.PARAMS`` for every name). The text is the body when it has any, else the
``message`` parameter; a JSON publish's text is its ``message`` member alone. Every
failure is a ``ClientError``.

The body is a file instead, by ntfy's rule (``body_is_file``), when there is no
``attach`` URL and a ``filename`` is given, or the body is over ``max_text`` bytes or
not UTF-8 text (unless its charset says which text it is): the ``message`` parameter is
then the text, and the file goes as an upload (``Publication.file``), named by
``filename`` (made safe) or ``attachment`` and its type's extension, as ntfy names it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from posixpath import basename
from typing import Any
from urllib.parse import unquote, urlsplit

from xmpp_post import charsets, scan
from xmpp_post.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from xmpp_post.files import content_type_for, safe_name, unnamed
from xmpp_post.fronts import fields
from xmpp_post.fronts.ntfy.actions import Action, parse_actions
from xmpp_post.fronts.ntfy.params import TRUE_WORDS, Params
from xmpp_post.model import NOT_XML_CHAR, check_xml_text

TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
WEBHOOK_NAMES = ("publish", "send", "trigger")
ALLOWED_METHODS = {"json": ("PUT", "POST"), "topic": ("PUT", "POST"), "webhook": ("GET", "POST")}
DEFAULT_MAX_TEXT = 4096  # ntfy's message size limit, in bytes
EMPTY_MESSAGE = "triggered"  # ntfy's text for a message without one
FILE_MESSAGE = "You received a file: {}"  # ntfy's text for an attachment without one
PRIORITIES = {"1": 1, "min": 1, "2": 2, "low": 2, "3": 3, "default": 3, "4": 4, "high": 4,
              "5": 5, "max": 5, "urgent": 5}
# parameters whose meaning the gateway cannot honour: refused, never dropped
REFUSED = {"delay": "scheduled delivery", "email": "e-mail notifications",
           "call": "phone calls", "template": "message templating"}
MARKDOWN_TYPE = "text/markdown"
# the JSON members that mean something here, by type (a string is accepted for each)
_JSON_TYPES: dict[str, type] = {
    "message": str, "title": str, "click": str, "attach": str, "filename": str, "icon": str,
    "delay": str, "email": str, "call": str, "priority": int, "markdown": bool,
    "tags": list, "actions": list, "encrypt": str,
}

_NOT_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f]")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Publication:
    """What one ntfy publish asks for, validated; every text can be carried by XML.

    ``priority`` is None when the request gave none (ntfy's default, 3). ``filename``
    is the attachment's name, set only with ``attach`` or ``file``. ``icon`` is kept for
    the reply only: the message does not show it. ``file``: the body is a file, to upload
    as ``filename`` with ``content_type``; ``message_given``: the request gave the text
    (else it is ntfy's "You received a file: …").
    """

    topic: str
    message: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    priority: int | None = None
    click: str | None = None
    attach: str | None = None
    filename: str | None = None
    actions: tuple[Action, ...] = ()
    markdown: bool = False
    icon: str | None = None
    file: bool = False
    content_type: str | None = None
    encrypt: str | None = None  # asked for: none or omemo (None: the sender's default)
    message_given: bool = True

    @property
    def text_to_send(self) -> bool:
        """Whether a message with text goes before the file: not for a file alone."""
        return not self.file or self.message_given or bool(
            self.title or self.tags or self.click or self.actions)


@dataclass(frozen=True)
class Route:
    """Which form a path is: ``json`` (the root), ``topic`` or ``webhook``."""

    kind: str
    topic: str = ""


def route(path: str, reserved: frozenset[str]) -> Route | None:
    """The ntfy form ``path`` is, or None when it is not an ntfy path.

    A reserved name (one of the gateway's own paths, compared case-insensitively) is
    never a topic.
    """
    if path == "/":
        return Route("json")
    parts = path.split("/")
    if len(parts) not in (2, 3) or parts[0] or not is_topic(parts[1], reserved):
        return None
    if len(parts) == 2:
        return Route("topic", parts[1])
    return Route("webhook", parts[1]) if parts[2] in WEBHOOK_NAMES else None


def is_topic(name: str, reserved: frozenset[str]) -> bool:
    """Whether ``name`` is a valid topic name that is not reserved."""
    return TOPIC.fullmatch(name) is not None and name.lower() not in _lowered(reserved)


def is_topic_path(path: str, reserved: frozenset[str]) -> bool:
    """Whether the router should hand ``path`` to the ntfy endpoint."""
    return route(path, reserved) is not None


def _lowered(names: frozenset[str]) -> frozenset[str]:
    return frozenset(name.lower() for name in names)


def parse_publish(method: str, path: str, headers: Mapping[str, str],
                  query: Sequence[tuple[str, str]], body: bytes | None, content_type: str,
                  *, reserved: frozenset[str],
                  max_text: int = DEFAULT_MAX_TEXT) -> Publication:
    """The publication one request asks for, or the ``ClientError`` that says why not.

    ``headers`` is looked up case-insensitively; ``body`` is None when it was too large
    to keep in memory (then it is longer than any text); ``content_type`` is the whole
    Content-Type header ("" when absent); ``max_text`` is the largest message, in bytes,
    sent as text (ntfy attaches longer ones as files, and so does the gateway).
    """
    where = route(path, reserved)
    if where is None:
        raise NotFound("there is no ntfy topic at this path")
    allowed = ALLOWED_METHODS[where.kind]
    if method.upper() not in allowed:
        raise MethodNotAllowed(f"use {' or '.join(allowed)} to publish here",
                               allowed=tuple(allowed))
    params = Params(headers, query)
    given: dict[str, str] = {}
    topic = where.topic
    if where.kind == "json":
        topic, given = _json_request(body or b"", reserved)

    def value(name: str) -> str:
        return given.get(name) or params.get(name)

    _refuse_unsupported(value)
    attach = _attach(value("attach"))
    name = value("filename")
    check_xml_text("filename", name)
    file = False
    if where.kind == "json":
        if attach is None and name:
            raise BadRequest("a JSON publish carries no file: PUT the file to /<topic> "
                             "with a Filename header, or attach a URL with attach",
                             code="attachment_not_supported")
        # as in ntfy, a JSON publish without a message says "triggered", even with a file
        message = given.get("message") or EMPTY_MESSAGE
    elif attach is None and (bool(name) or body_is_file(body, content_type, max_text)):
        file, message = True, ""
    else:
        message = _body_text(body, content_type, attach is not None, max_text)
    if not message:
        message = params.get("message").replace("\\n", "\n")
    check_xml_text("message", message)
    if len(message.encode("utf-8", "surrogatepass")) > max_text:
        raise PayloadTooLarge(f"the message is longer than {max_text} bytes",
                              code="message_too_long")
    filename = (name or _name_in_url(attach)) if attach is not None else None
    kind = None
    if file:
        filename = safe_name(name) if name else None
        kind = content_type_for(filename or "", content_type)
        filename = filename or unnamed(kind)
    given_text = bool(message)
    if not message:
        message = FILE_MESSAGE.format(filename) if filename else EMPTY_MESSAGE
    content = content_type.partition(";")[0].strip().lower()
    markdown = (value("markdown").lower() in TRUE_WORDS or content == MARKDOWN_TYPE
                or params.get("content_type").lower() == MARKDOWN_TYPE)
    return Publication(
        topic=topic, message=message, title=_text("title", value("title")) or None,
        tags=_tags(value("tags")), priority=_priority(value("priority")),
        click=_url("click", value("click")), attach=attach, filename=filename,
        actions=_actions(value("actions")), markdown=markdown, icon=_icon(value("icon")),
        file=file, content_type=kind, message_given=given_text,
        encrypt=fields.encrypt(value("encrypt")) if value("encrypt") else None,
    )


def _refuse_unsupported(value: Callable[[str], str]) -> None:
    for name, what in REFUSED.items():
        given = value(name)
        if name == "template" and given.lower() not in TRUE_WORDS:
            continue
        if given:
            raise BadRequest(f"this gateway cannot honour the ntfy parameter {name!r} "
                             f"({what}); publish without it", code="unsupported_field")


def _json_request(body: bytes, reserved: frozenset[str]) -> tuple[str, dict[str, str]]:
    """The topic and the parameters of a JSON publish, as strings like headers give."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("the body must be an ntfy message as a JSON object",
                         code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be an ntfy message as a JSON object",
                         code="invalid_json")
    topic = data.get("topic")
    if not isinstance(topic, str) or not topic:
        raise BadRequest("the JSON object needs a 'topic'", code="invalid_topic")
    if not TOPIC.fullmatch(topic):
        raise BadRequest("a topic is 1 to 64 letters, digits, '-' and '_'",
                         code="invalid_topic")
    if topic.lower() in _lowered(reserved):
        raise BadRequest("this topic name is reserved", code="topic_reserved")
    given: dict[str, str] = {}
    for name, item in data.items():
        if item is None or name == "topic":
            continue
        text = _json_member(name, item)
        if text:
            given[name] = text
    return topic, given


def _json_member(name: str, item: Any) -> str:
    """One member as the string its header would carry; unknown members give ""."""
    kind = _JSON_TYPES.get(name)
    if kind is None:
        return ""  # unknown or cosmetic members are ignored, as ntfy does
    if isinstance(item, str):
        return item.strip()
    if kind is int and isinstance(item, int) and not isinstance(item, bool):
        return str(item) if item else ""
    elif kind is bool and isinstance(item, bool):
        return "yes" if item else ""
    elif kind is list and name == "tags" and isinstance(item, list) and all(
            isinstance(tag, str) for tag in item):
        return ",".join(item)
    elif kind is list and name == "actions" and isinstance(item, list):
        return json.dumps(item) if item else ""
    raise BadRequest(f"the JSON member {name!r} has the wrong type", code="invalid_json")


def _charset(content_type: str) -> str:
    """The body's charset when it names one other than UTF-8; else ""."""
    match = _CHARSET.search(content_type)
    charset = match.group(1).lower() if match else ""
    return "" if charset in ("utf-8", "utf8") else charset


def body_is_file(body: bytes | None, content_type: str, max_text: int) -> bool:
    """ntfy's rule: a body (None: too large to keep) over ``max_text`` bytes, or not
    UTF-8, is a file; one whose charset names another encoding is that encoding's text."""
    if body is None or len(body) > max_text:
        return True
    if _charset(content_type):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _body_text(body: bytes | None, content_type: str, with_url: bool, max_text: int) -> str:
    """The message a raw body carries (not a file: ``body_is_file``)."""
    if body is None:
        raise PayloadTooLarge(f"the message is longer than {max_text} bytes",
                              code="message_too_long")
    charset = _charset(content_type)
    try:
        text = charsets.decode(body, charset or "utf-8")
    except LookupError:
        raise UnsupportedMediaType("the body's charset is unknown",
                                   code="unsupported_charset") from None
    except (UnicodeDecodeError, ValueError):
        shown = charset or "UTF-8"
        raise BadRequest(f"the message is not valid {shown}", code="invalid_encoding") \
            from None
    return text.removeprefix("\ufeff").strip()  # a byte-order mark is no text


def _text(name: str, text: str) -> str:
    check_xml_text(name, text)
    return text.strip()


def _tags(text: str) -> tuple[str, ...]:
    tags = tuple(tag.strip() for tag in text.split(",") if tag.strip())
    for tag in tags:
        check_xml_text("tags", tag)
    return tags


def _priority(text: str) -> int | None:
    if not text:
        return None
    priority = PRIORITIES.get(text.strip().lower())
    if priority is None:
        raise BadRequest("the priority must be 1 to 5 or min, low, default, high, urgent "
                         "or max", code="invalid_priority")
    return priority


def _url(name: str, text: str) -> str | None:
    check_xml_text(name, text)
    if scan.search(_NOT_IN_URL, text, reach=1):
        raise BadRequest(f"the {name} URL contains a space or control character",
                         code=f"invalid_{name}")
    return text or None


def _icon(text: str) -> str | None:
    """Purely cosmetic: never refused; echoed in the reply only when it is a plain
    http(s) URL."""
    plain = (text and not scan.search(_NOT_IN_URL, text, reach=1)
             and not scan.search(NOT_XML_CHAR, text, reach=1))
    if plain and text.lower().startswith(("http://", "https://")):
        return text
    return None


def _attach(text: str) -> str | None:
    if not text:
        return None
    check_xml_text("attach", text)
    try:
        return fields.oob_url(text)
    except BadRequest as exc:
        problem = exc.message.removeprefix("the field 'oob_url' ")
        raise BadRequest(f"the attach URL {problem}", code="invalid_attach") from None


def _name_in_url(url: str | None) -> str:
    """The attachment's name when none is given: the URL's last path segment, as ntfy."""
    name = unquote(basename(urlsplit(url or "").path), errors="replace")
    if not name or name in (".", "..") or scan.search(NOT_XML_CHAR, name, reach=1):
        return "attachment"
    return name


def _actions(text: str) -> tuple[Action, ...]:
    actions = parse_actions(text)
    for action in actions:
        for name in ("label", "url", "method", "body", "intent"):
            check_xml_text(f"action's {name}", getattr(action, name))
        for key, item in action.headers + action.extras:
            check_xml_text("action's headers", key + item)
    return actions
