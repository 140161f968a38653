"""A tool's request as a template sees it: the parsed payload and the headers it may
read. (The delivery id that makes a redelivery recognizable is ``auth.webhooks``'.)"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from xmpp_post.errors import BadRequest, UnsupportedMediaType

MAX_DEPTH = 64
FORM_TYPE = "application/x-www-form-urlencoded"

# Never shown to a template: credentials, and GitLab's shared secret.
HIDDEN_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie",
                            "x-gitlab-token"})
# Nor these query parameters (any case): ntfy's ``auth`` (an Authorization header in the
# URL), a room's password, and the names tools give a secret in a URL.
HIDDEN_QUERY = frozenset({"auth", "authorization", "room_password", "password", "passwd",
                          "token", "access_token", "secret", "api_key", "apikey"})



def parse_payload(media_type: str | None, body: bytes) -> Any:
    """The JSON value a tool sent: the body itself (``application/json`` or any
    ``application/…+json``), or the single field ``payload`` of a form
    (``application/x-www-form-urlencoded``, as GitHub, Gitea, Slack and Mattermost can
    send). Other types are 415; bad JSON, JSON nested deeper than :data:`MAX_DEPTH`
    and other forms are 400."""
    kind = (media_type or "").partition(";")[0].strip().lower()
    if kind == "application/json" or (kind.startswith("application/")
                                      and kind.endswith("+json")):
        return _json(_utf8(body, "body"))
    if kind == FORM_TYPE:
        return _json(_form_payload(body))
    shown = f"Content-Type {kind!r}" if kind else "no Content-Type"
    raise UnsupportedMediaType(
        f"{shown}: a template reads application/json, or a form whose only field is "
        "'payload'", code="unsupported_media_type")


def _utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest(f"the {where} is not UTF-8", code="invalid_encoding") from None


def _form_payload(body: bytes) -> str:
    try:
        fields = parse_qsl(_utf8(body, "form"), keep_blank_values=True, strict_parsing=True,
                           errors="strict", max_num_fields=20)
    except UnicodeDecodeError:
        raise BadRequest("the form's payload is not UTF-8", code="invalid_encoding") \
            from None
    except ValueError:
        raise BadRequest("the body is not a form of name=value pairs",
                         code="invalid_form") from None
    names = [name for name, _ in fields]
    if names != ["payload"]:
        found = ", ".join(repr(name) for name in names[:5]) or "no fields"
        raise BadRequest(f"a form for a template must have one field, 'payload' (found "
                         f"{found}); or send the JSON as application/json",
                         code="invalid_form")
    return fields[0][1]


def _json(text: str) -> Any:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest("the payload is not valid JSON", code="invalid_json") from None
    if _depth_over(value, MAX_DEPTH):
        raise BadRequest(f"the payload is nested deeper than {MAX_DEPTH} levels",
                         code="invalid_json")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        level = [child for item in level
                 for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, dict | list)]
        if not level:
            return False
    return True


def visible_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request's headers for a template: names in lower case, credentials left out."""
    shown: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key not in HIDDEN_HEADERS:
            shown.setdefault(key, value)
    return shown


def visible_query(query: Mapping[str, str]) -> dict[str, str]:
    """The query parameters for a template, credentials left out."""
    return {name: value for name, value in query.items()
            if name.lower() not in HIDDEN_QUERY}
