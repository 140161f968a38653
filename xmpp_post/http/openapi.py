"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /openapi.json``.

This module holds the frame: the document's info, the gateway's own routes (health,
readiness, metrics, this document), the shapes every front shares (``Receipt``,
``Results``, ``Error``, the error statuses) and the security schemes of the
authentication chain. Each front describes its own routes (an ``OpenApiPart``, from
its ``*_openapi`` module), built from the same constants its parser uses, so a field
added there shows up here. Tests check the document against the running gateway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from xmpp_post import __version__
from xmpp_post.config import Config

REF = "#/components/schemas/"


@dataclass(frozen=True)
class OpenApiPart:
    """What one front adds to the document: paths, schemas, security schemes."""

    paths: dict[str, Any]
    schemas: dict[str, Any] = field(default_factory=dict)
    security_schemes: dict[str, Any] = field(default_factory=dict)


ERROR_STATUSES = {
    "400": "Malformed input: bad JSON or form, invalid JID, unknown type or field, "
           "characters XML cannot carry, a path that is not UTF-8, two Authorization "
           "headers, a query string on a webhook URL, a request that is not valid HTTP/1.1",
    "401": "Missing or malformed credentials, the XMPP server rejected them, an unknown or "
           "revoked token, or a webhook delivery's signature is missing, wrong or stale",
    "403": "The sender's domain is not served by this gateway, a room or the server refused "
           "the message, or a token may not send to that recipient or with that template",
    "404": "No such room, webhook (name or URL) or template; or the server refused the "
           "message for its recipient (no such account, blocked, offline storage full: "
           "servers do not say which)",
    "408": "The client sent its request too slowly",
    "410": "The recipient's address is no longer in use",
    "413": "The body, or the stanza it would make, is larger than the configured limit; "
           "a file is larger than max_file_size or the sender's server takes "
           "(file_too_large)",
    "415": "Unsupported Content-Type or charset",
    "417": "An Expect header other than 100-continue",
    "422": "No recipient or no text, a template failed on the payload or made no text, "
           "an Idempotency-Key reused for another request, or more recipients than a "
           "token's rate allows at all",
    "429": "Too many failed logins, or bodies still arriving, for this address or account, "
           "a token over its rate, or the sender's upload quota; retry after Retry-After",
    "431": "A request line or header field is too long",
    "501": "The sender's XMPP server offers no file upload (XEP-0363)",
    "502": "The XMPP server refused the message, a file's upload slot, or the password the "
           "gateway holds for one of its accounts; or a file's upload failed",
    "503": "The XMPP server is unreachable or refused the session, the recipient's server "
           "cannot take the message now, or the shared state (Redis) is unavailable "
           "(state_unavailable) or holds an unreadable answer for the Idempotency-Key "
           "(stored_answer_unreadable); retry after Retry-After",
    "504": "The XMPP server did not acknowledge the message in time",
}
# Request headers the API reads besides Authorization (fuzzed from this description).
HEADERS = [
    {"name": "Idempotency-Key", "in": "header", "required": False,
     "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                "pattern": "^[\\x20-\\x7e]+$"},
     "description": "Retries with the same key get the first answer (see docs/reliability.md)"},
    {"name": "X-Request-Id", "in": "header", "required": False,
     "schema": {"type": "string"},
     "description": "Echoed in the response when it is 1-64 of A-Z a-z 0-9 . _ : -"},
]

FILES = {"type": "array", "description": "The files sent (multipart/form-data), each "
         "uploaded once", "items": {"type": "object",
                                    "required": ["name", "size", "content_type", "url"],
                                    "properties": {"name": {"type": "string"},
                                                   "size": {"type": "integer"},
                                                   "content_type": {"type": "string"},
                                                   "url": {"type": "string"}}}}


def error_responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, text in ERROR_STATUSES.items():
        response: dict[str, Any] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": REF + "Error"}}},
        }
        if status == "401":
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if status in ("429", "503"):
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                   "required": True}}
        out[status] = response
    return out


def options_operation() -> dict[str, Any]:
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


def document(config: Config, parts: Iterable[OpenApiPart]) -> dict[str, Any]:
    """The document: the frame, and each front's ``parts``."""
    doc = _document(config)
    for part in parts:
        for path, item in part.paths.items():
            doc["paths"].setdefault(path, {}).update(item)  # "/" may be ntfy's and web's
        doc["components"]["schemas"].update(part.schemas)
        doc["components"]["securitySchemes"].update(part.security_schemes)
    return doc


def _document(config: Config) -> dict[str, Any]:
    status = {"type": "object", "properties": {"status": {"type": "string"}},
              "required": ["status"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "xmpp-post", "version": __version__,
                 "description": "Send XMPP messages as the authenticated user."},
        "paths": {
            "/healthz": _get("The process is alive", "application/json", status),
            "/readyz": _get("The gateway can serve (status ready, or degraded when the "
                            "shared state is unreachable)", "application/json", status, {
                "503": {"description": "Not ready (starting, draining, stopping, or the XMPP "
                        "server is unreachable)",
                        "content": {"application/json": {"schema": status}}}}),
            "/metrics": _get("Prometheus metrics", "text/plain", {"type": "string"}),
            "/openapi.json": _get("This document", "application/json", {"type": "object"}),
        },
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic",
                                          "description": "user@domain:password, or any "
                                                         "user name and an xpt_ token"},
                                "bearer": {"type": "http", "scheme": "bearer",
                                           "description": "an API token (xpt_…)"}},
            "schemas": {
                "Receipt": {"type": "object", "required": ["id", "from", "to", "type"],
                            "properties": {"id": {"type": "string"},
                                           "from": {"type": "string"},
                                           "to": {"type": "string"},
                                           "type": {"type": "string"},
                                           "nick": {"type": "string"},
                                           "receipt": {"type": "string",
                                                       "enum": ["received", "timeout"]},
                                           "files": FILES}},
                "Results": {"type": "object", "required": ["results"], "properties": {
                    "results": {"type": "array", "items": {"type": "object",
                                                           "required": ["to", "status"]}},
                    "files": FILES}},
                "Error": {"type": "object", "required": ["error", "message"],
                          "additionalProperties": False,
                          "properties": {"error": {"type": "string"},
                                         "message": {"type": "string"}}},
            },
        },
    }
