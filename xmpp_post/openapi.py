"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /openapi.json``.

Built from the same constants the parser uses (fields, types, media types), so a field
added to ``request`` shows up here; tests check the document against the running gateway.
"""

from __future__ import annotations

from typing import Any

from xmpp_post import __version__, request
from xmpp_post.config import Config

ERROR_STATUSES = {
    "400": "Malformed input: bad JSON or form, invalid JID, unknown type or field, "
           "characters XML cannot carry",
    "401": "Missing or malformed credentials, or the XMPP server rejected them",
    "403": "The sender's domain is not served by this gateway",
    "413": "The body is larger than the configured limit",
    "415": "Unsupported Content-Type or charset",
    "422": "No recipient or no text",
    "503": "The XMPP server is unreachable or refused the session; retry after Retry-After",
    "504": "The XMPP server did not acknowledge the message in time",
}

FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "to": {"type": "string", "minLength": 1, "description": "Recipient: full JID, bare JID, "
           "or a local part on the sender's domain"},
    "type": {"type": "string", "enum": list(request.MESSAGE_TYPES), "default": "chat"},
    "body": {"type": "string", "minLength": 1, "description": "The message text"},
}


def _error_responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, text in ERROR_STATUSES.items():
        response: dict[str, Any] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if status == "401":
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if status == "503":
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                   "required": True}}
        out[status] = response
    return out


def _post(with_recipient: bool) -> dict[str, Any]:
    fields = {"type": "object", "additionalProperties": False,
              "properties": {name: FIELD_SCHEMAS[name] for name in request.FIELDS}}
    operation: dict[str, Any] = {
        "summary": "Send a message as the authenticated user",
        "operationId": "sendTo" if with_recipient else "send",
        "security": [{"basic": []}],
        "requestBody": {"required": True, "content": {
            request.TEXT: {"schema": {"type": "string"}},
            request.FORM: {"schema": fields},
            request.JSON: {"schema": fields},
        }},
        "responses": {
            "201": {"description": "The XMPP server acknowledged the message",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Receipt"}}}},
            **_error_responses(),
        },
    }
    return operation


RECIPIENT = {"name": "recipient", "in": "path", "required": True,
             "schema": {"type": "string", "minLength": 1},
             "description": "Full JID, bare JID, or a local part on the sender's domain"}


def _options() -> dict[str, Any]:
    return {"summary": "What the endpoint accepts",
            "responses": {"200": {"description": "Allowed methods and content types",
                                  "headers": {"Allow": {"schema": {"type": "string"}}},
                                  "content": {"application/json": {
                                      "schema": {"type": "object"}}}}}}


def _get(summary: str, media: str, schema: dict[str, Any],
         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": summary,
                                         "content": {media: {"schema": schema}}}}
    responses.update(extra or {})
    return {"get": {"summary": summary, "responses": responses}}


def document(config: Config) -> dict[str, Any]:
    base = config.base_path.rstrip("/")
    status = {"type": "object", "properties": {"status": {"type": "string"}},
              "required": ["status"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "xmpp-post", "version": __version__,
                 "description": "Send XMPP messages as the authenticated user."},
        "paths": {
            base or "/": {"post": _post(False), "options": _options()},
            base + "/{recipient}": {"parameters": [RECIPIENT], "post": _post(True),
                                    "options": _options()},
            "/healthz": _get("The process is alive", "application/json", status),
            "/readyz": _get("The gateway can serve", "application/json", status, {
                "503": {"description": "Not ready (starting, stopping, or the XMPP server is "
                        "unreachable)", "content": {"application/json": {"schema": status}}}}),
            "/metrics": _get("Prometheus metrics", "text/plain", {"type": "string"}),
            "/openapi.json": _get("This document", "application/json", {"type": "object"}),
        },
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic",
                                          "description": "user@domain:password"}},
            "schemas": {
                "Receipt": {"type": "object", "required": ["id", "from", "to", "type"],
                            "properties": {"id": {"type": "string"},
                                           "from": {"type": "string"},
                                           "to": {"type": "string"},
                                           "type": {"type": "string"}}},
                "Error": {"type": "object", "required": ["error", "message"],
                          "additionalProperties": False,
                          "properties": {"error": {"type": "string"},
                                         "message": {"type": "string"}}},
            },
        },
    }
