"""The OpenAPI description of ntfy's publish routes (``ntfy_routes``), part of the
gateway's document when ntfy publishing is on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xmpp_post.config import Config
from xmpp_post.fronts.ntfy.publish import PRIORITIES, WEBHOOK_NAMES
from xmpp_post.fronts.ntfy.topics import reserved_names
from xmpp_post.http.openapi import OpenApiPart

# the publish parameters described, with their header (X-…) and query names
DESCRIBED: dict[str, dict[str, Any]] = {
    "message": {"type": "string", "description": "The text (else the body)"},
    "title": {"type": "string", "description": "Subject, and a bold first line"},
    "priority": {"type": "string", "enum": list(PRIORITIES),
                 "description": "4-5 (high, urgent, max) put a marker before the text"},
    "tags": {"type": "string", "description": "Comma-separated; known ones become emoji"},
    "click": {"type": "string", "description": "A link added to the text"},
    "attach": {"type": "string", "format": "uri", "pattern": "^https?://",
               "description": "An http(s) URL: XEP-0066 out-of-band data and a line"},
    "filename": {"type": "string", "description": "The attachment's name; without attach, "
                                                  "the body is a file of that name"},
    "markdown": {"type": "string", "enum": ["1", "yes", "true", "0", "no", "false"],
                 "description": "Markdown to plain text with XEP-0393 styling"},
    "icon": {"type": "string", "pattern": "^https?://\\S*$",
             "description": "Checked and echoed; not shown"},
    "actions": {"type": "string", "description": "ntfy's short format or a JSON array; "
                                                 "each becomes a line of the text"},
}
ERRORS = {
    "400": "A parameter is invalid, or one the gateway cannot honour (delay, email, call)",
    "401": "Missing or malformed credentials (header or ?auth=), or the XMPP server "
           "rejected them",
    "403": "The sender's domain is not served, a token may not send there (or only "
           "through its template), or a room refused the sender",
    "404": "No such room, or no such path",
    "405": "A method this path does not take",
    "408": "The client sent its request too slowly",
    "413": "A file body over max_file_size or the sender's server's limit "
           "(file_too_large), a message over ntfy_max_text, or a JSON body over max_body",
    "415": "An unknown charset",
    "422": "An Idempotency-Key reused for another request",
    "429": "Too many failed logins, or the sender's upload quota; retry after Retry-After",
    "501": "The sender's XMPP server offers no file upload (a file body)",
    "502": "The XMPP server refused the message or a file's upload",
    "503": "The XMPP server is unreachable or the gateway is busy; retry after Retry-After",
    "504": "The XMPP server did not acknowledge the message in time",
}
_REF = "#/components/schemas/"


TOPIC = {"type": "string", "pattern": "^[-_A-Za-z0-9]{1,64}$"}


def _topic(reserved: frozenset[str]) -> dict[str, Any]:
    return {**TOPIC, "not": {"enum": sorted(reserved)}}


def _parameters(reserved: frozenset[str], webhook: bool) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        # (the reserved names are not topics: their paths are the gateway's own)
        {"name": "topic", "in": "path", "required": True, "schema": TOPIC,
         "description": "A [topics] entry, else the user with this localpart on the "
                        "sender's domain; never one of " + ", ".join(sorted(reserved))}]
    if webhook:
        params.append({"name": "action", "in": "path", "required": True,
                       "schema": {"type": "string", "enum": list(WEBHOOK_NAMES)}})
    for name, schema in DESCRIBED.items():
        params.append({"name": name, "in": "query", "required": False, "schema": schema})
        params.append({"name": "X-" + name.capitalize(), "in": "header", "required": False,
                       "schema": schema})
    return params


def _responses() -> dict[str, Any]:
    out: dict[str, Any] = {"200": {
        "description": "The XMPP server acknowledged the message to every recipient",
        "content": {"application/json": {"schema": {"$ref": _REF + "NtfyMessage"}}}}}
    for status, text in ERRORS.items():
        response: dict[str, Any] = {"description": text, "content": {"application/json": {
            "schema": {"$ref": _REF + "NtfyError"}}}}
        if status == "401":
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if status in ("429", "503"):
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        if status == "405":
            response["headers"] = {"Allow": {"schema": {"type": "string"}}}
        out[status] = response
    return out


def _operation(summary: str, operation_id: str, body: dict[str, Any] | None,
               ) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": summary, "operationId": operation_id, "tags": ["ntfy"],
                           "security": [{"basic": []}, {"bearer": []}, {"ntfyAuth": []}],
                           "responses": _responses()}
    if body is not None:
        out["requestBody"] = body
    return out


def _options() -> dict[str, Any]:
    return {"summary": "What the path accepts", "tags": ["ntfy"], "responses": {"200": {
        "description": "Allowed methods and the publish parameters",
        "headers": {"Allow": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": {"type": "object"}}}},
        "404": {"description": "Not a topic: no such path", "content": {"application/json": {
            "schema": {"$ref": _REF + "NtfyError"}}}}}}


def paths(reserved: frozenset[str]) -> dict[str, Any]:
    """The ntfy paths; ``reserved`` are the names that are not topics."""
    json_body = {"required": True, "content": {"application/json": {
        "schema": {"$ref": _REF + "NtfyPublish"}}}}
    raw_body = {"required": False, "description": "The message, whatever the Content-Type; "
                "a file (uploaded with XEP-0363) with a filename and no attach, or when "
                "over ntfy_max_text or not UTF-8, as ntfy makes it",
                "content": {"text/plain": {"schema": {"type": "string"}},
                            "application/octet-stream": {"schema": {
                                "type": "string", "contentMediaType":
                                    "application/octet-stream"}}}}
    topic_params = _parameters(reserved, webhook=False)
    webhook_params = _parameters(reserved, webhook=True)
    return {
        "/": {
            "put": _operation("Publish a JSON message (ntfy)", "ntfyPutJson", json_body),
            "post": _operation("Publish a JSON message (ntfy)", "ntfyPostJson", json_body),
            "options": _options()},
        "/{topic}": {
            "parameters": topic_params,
            "put": _operation("Publish to a topic (ntfy)", "ntfyPut", raw_body),
            "post": _operation("Publish to a topic (ntfy)", "ntfyPost", raw_body),
            "options": _options()},
        "/{topic}/{action}": {
            "parameters": webhook_params,
            "get": _operation("Publish with ?message= (ntfy's webhook form)",
                              "ntfyGetWebhook", None),
            "post": _operation("Publish with ?message= (ntfy's webhook form)",
                               "ntfyPostWebhook", raw_body),
            "options": _options()},
    }


def schemas(reserved: frozenset[str]) -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "NtfyPublish": {"type": "object", "required": ["topic"], "properties": {
            "topic": _topic(reserved), "message": text, "title": text,
            "tags": {"type": "array", "items": text},
            "priority": {"type": "integer", "minimum": 1, "maximum": 5},
            "click": text, "attach": DESCRIBED["attach"], "filename": text,
            "icon": DESCRIBED["icon"], "markdown": {"type": "boolean"},
            "actions": {"type": "array", "maxItems": 3, "items": {"type": "object"}}}},
        "NtfyMessage": {"type": "object",
                        "required": ["id", "time", "event", "topic", "message"],
                        "properties": {
                            "id": {"type": "string", "pattern": "^[A-Za-z0-9]{12}$"},
                            "time": {"type": "integer"},
                            "event": {"type": "string", "enum": ["message"]},
                            "topic": text, "title": text, "message": text,
                            "priority": {"type": "integer"},
                            "tags": {"type": "array", "items": text}, "click": text,
                            "icon": text, "actions": {"type": "array"},
                            "attachment": {"type": "object", "properties": {
                                "name": text, "type": text, "size": {"type": "integer"},
                                "url": text}},
                            "content_type": text}},
        "NtfyError": {"type": "object", "required": ["error", "message"],
                      "additionalProperties": False, "properties": {
                          "error": text, "message": text,
                          "http": {"type": "integer", "description": "the HTTP status"},
                          "code": {"type": "integer", "description": "ntfy's error number"},
                          "results": {"type": "array", "items": {"type": "object"},
                                      "description": "one per recipient of a [topics] "
                                                     "entry"}}},
    }


SECURITY_SCHEMES = {"ntfyAuth": {"type": "apiKey", "in": "query", "name": "auth",
                                 "description": "ntfy's auth parameter: the Authorization "
                                                "header value in base64"}}


def part(config: Config, _templates: Mapping[str, str]) -> OpenApiPart:
    reserved = reserved_names(config.base_path)
    return OpenApiPart(paths(reserved), schemas(reserved), SECURITY_SCHEMES)
