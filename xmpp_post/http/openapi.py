"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /openapi.json``.

Built from the same constants the parser uses (fields, types, media types), so a field
added to ``request`` shows up here, and from the templates the gateway loaded (the
``template`` parameter); ntfy's publish routes come from ``ntfy_openapi``. Tests check
the document against the running gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xmpp_post import __version__
from xmpp_post.config import Config
from xmpp_post.fronts import message_request as request
from xmpp_post.fronts.ntfy import ntfy_openapi
from xmpp_post.fronts.ntfy.topics import reserved_names
from xmpp_post.model import MESSAGE_TYPES

ERROR_STATUSES = {
    "400": "Malformed input: bad JSON or form, invalid JID, unknown type or field, "
           "characters XML cannot carry, a path that is not UTF-8, two Authorization "
           "headers, a request that is not valid HTTP/1.1",
    "401": "Missing or malformed credentials, the XMPP server rejected them, an unknown or "
           "revoked token, or a webhook delivery's signature is missing, wrong or stale",
    "403": "The sender's domain is not served by this gateway, a room or the server refused "
           "the message, or a token may not send to that recipient or with that template",
    "404": "No such room, webhook or template; or the server refused the message for its "
           "recipient (no such account, blocked, offline storage full: servers do not say "
           "which)",
    "408": "The client sent its request too slowly",
    "410": "The recipient's address is no longer in use",
    "413": "The body, or the stanza it would make, is larger than the configured limit",
    "415": "Unsupported Content-Type or charset",
    "417": "An Expect header other than 100-continue",
    "422": "No recipient or no text, a template failed on the payload or made no text, or "
           "an Idempotency-Key reused for another request",
    "429": "Too many failed logins, or bodies still arriving, for this address or account, "
           "or a token over its rate; retry after Retry-After",
    "431": "A request line or header field is too long",
    "502": "The XMPP server refused the message, or the password the gateway holds for one "
           "of its accounts",
    "503": "The XMPP server is unreachable or refused the session, the recipient's server "
           "cannot take the message now, or the shared state (Redis) is unavailable "
           "(state_unavailable); retry after Retry-After",
    "504": "The XMPP server did not acknowledge the message in time",
}
# Request headers the API reads besides Authorization (fuzzed from this description).
HEADERS = [
    {"name": "Idempotency-Key", "in": "header", "required": False,
     "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                "pattern": "^[\\x20-\\x7e]+$"},
     "description": "Retries with the same key get the first answer (see the README)"},
    {"name": "X-Request-Id", "in": "header", "required": False,
     "schema": {"type": "string"},
     "description": "Echoed in the response when it is 1-64 of A-Z a-z 0-9 . _ : -"},
]

_TO = {"type": "string", "minLength": 1,
       "description": "Recipient: full JID, bare JID, or a local part on the sender's domain"}
_TOKEN = "^[A-Za-z0-9._:-]{1,%d}$"
_BOOL_TEXT = {"type": "string", "enum": ["true", "false", "1", "0", "TRUE", "FALSE", "True",
                                         "False"]}

FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "to": _TO,
    "type": {"type": "string", "enum": list(MESSAGE_TYPES),
             "description": "Default: groupchat for a room, chat otherwise"},
    "body": {"type": "string", "minLength": 1,
             "description": "The message text (optional when oob_url is given)"},
    "subject": {"type": "string"},
    "thread": {"type": "string", "pattern": _TOKEN % 128},
    "id": {"type": "string", "pattern": _TOKEN % 64,
           "description": "Client-chosen stanza id, echoed back"},
    "lang": {"type": "string", "maxLength": 35,
             "pattern": "^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$", "description": "xml:lang"},
    "oob_url": {"type": "string", "format": "uri", "maxLength": 2048, "pattern": "^https?://",
                "description": "XEP-0066 link, also appended to the body"},
    "receipt": {"description": "Ask for a XEP-0184 delivery receipt",
                "oneOf": [{"type": "boolean"}, _BOOL_TEXT]},
    "nick": {"type": "string", "maxLength": 64, "description": "Nickname in a group chat"},
    "room_password": {"type": "string", "description": "Password of a protected room"},
}


def _fields_schema(json_body: bool) -> dict[str, Any]:
    properties = {name: FIELD_SCHEMAS[name] for name in request.FIELDS}
    if json_body:
        properties["to"] = {"oneOf": [_TO, {"type": "array", "items": _TO, "minItems": 1}]}
        return {"type": "object", "additionalProperties": False, "properties": properties}
    properties["to"] = {"oneOf": [_TO, {"type": "array", "items": _TO}]}
    properties["receipt"] = _BOOL_TEXT
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _template_parameter(templates: Mapping[str, str]) -> dict[str, Any]:
    listed = "".join(f"\n- `{name}`: {text}" for name, text in templates.items())
    schema: dict[str, Any] = {"type": "string"}
    if templates:
        schema["enum"] = list(templates)
    return {"name": "template", "in": "query", "required": False, "schema": schema,
            "description": "Render the body, a tool's own JSON payload (application/json, "
                           "or a form whose one field is `payload`), with this template; "
                           "the query's message fields win over the template's. "
                           f"Templates:{listed}"}


def _query_parameters(templates: Mapping[str, str]) -> list[dict[str, Any]]:
    params = [_template_parameter(templates)]
    for name in request.FIELDS:
        schema = _fields_schema(False)["properties"][name]
        param: dict[str, Any] = {"name": name, "in": "query", "required": False,
                                 "schema": schema}
        if name == "to":
            param.update(style="form", explode=True)
        params.append(param)
    return params


def _error_responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, text in ERROR_STATUSES.items():
        response: dict[str, Any] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if status == "401":
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if status in ("429", "503"):
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                   "required": True}}
        out[status] = response
    return out


_TEMPLATE_SUCCESS = {
    "200": {"description": "With a template whose reply is slack: sent (the text `ok`); "
                           "with any template that chose to send nothing: nothing sent",
            "content": {"text/plain": {"schema": {"type": "string", "enum": ["ok"]}},
                        "application/json": {"schema": {
                            "type": "object", "required": ["sent", "skipped"],
                            "properties": {"sent": {"type": "integer"},
                                           "skipped": {"type": "boolean"}}}}}},
    "204": {"description": "With a template whose reply is discord: sent, or nothing "
                           "to send"},
}


def _post(with_recipient: bool, templates: Mapping[str, str]) -> dict[str, Any]:
    results = {"description": "One outcome per recipient (several recipients named)",
               "content": {"application/json": {
                   "schema": {"$ref": "#/components/schemas/Results"}}}}
    operation: dict[str, Any] = {
        "summary": "Send a message as the authenticated user",
        "operationId": "sendTo" if with_recipient else "send",
        "security": [{"basic": []}, {"bearer": []}],
        "parameters": [*_query_parameters(templates), *HEADERS],
        "requestBody": {"required": True, "content": {
            request.TEXT: {"schema": {"type": "string"}},
            request.FORM: {"schema": _fields_schema(False)},
            request.JSON: {"schema": _fields_schema(True)},
        }},
        "responses": {
            "201": {"description": "The XMPP server acknowledged the message (or, with several "
                    "recipients, every message)",
                    "content": {"application/json": {"schema": {"oneOf": [
                        {"$ref": "#/components/schemas/Receipt"},
                        {"$ref": "#/components/schemas/Results"}]}}}},
            "207": results,
            **_TEMPLATE_SUCCESS,
            **_error_responses(),
        },
    }
    return operation


RECIPIENT = {"name": "recipient", "in": "path", "required": True,
             "schema": {"type": "string", "minLength": 1},
             "description": "Full JID, bare JID, or a local part on the sender's domain"}


def _hook() -> dict[str, Any]:
    json_or_form = {"schema": {"type": "object"}}
    sent = {"description": "Sent to the webhook's recipients",
            "content": {"application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/Receipt"},
                {"$ref": "#/components/schemas/Results"}]}}}}
    return {
        "summary": "A signed webhook's delivery, rendered by its template",
        "operationId": "hook",
        "parameters": [{"name": "name", "in": "path", "required": True,
                        "schema": {"type": "string", "minLength": 1},
                        "description": "The webhook's name in [webhooks]"}],
        "requestBody": {"required": True, "content": {request.JSON: json_or_form,
                                                      request.FORM: json_or_form}},
        "responses": {
            "200": {"description": "The template sent nothing (or a tool's own success "
                    "answer)", "content": {"application/json": {"schema": {"type": "object"}},
                                           "text/plain": {"schema": {"type": "string"}}}},
            "201": sent,
            "204": {"description": "Sent (a tool that wants no body)"},
            "207": {"description": "One outcome per recipient; some failed",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Results"}}}},
            **_error_responses(),
        },
    }


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


def document(config: Config, templates: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The document; ``templates`` are the template names and descriptions to list."""
    doc = _document(config, templates or {})
    if config.ntfy:
        reserved = reserved_names(config.base_path)
        doc["paths"].update(ntfy_openapi.paths(reserved))
        doc["components"]["schemas"].update(ntfy_openapi.schemas(reserved))
        doc["components"]["securitySchemes"].update(ntfy_openapi.SECURITY_SCHEMES)
    return doc


def _document(config: Config, templates: Mapping[str, str]) -> dict[str, Any]:
    base = config.base_path.rstrip("/")
    status = {"type": "object", "properties": {"status": {"type": "string"}},
              "required": ["status"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "xmpp-post", "version": __version__,
                 "description": "Send XMPP messages as the authenticated user."},
        "paths": {
            base or "/": {"post": _post(False, templates), "options": _options()},
            base + "/{recipient}": {"parameters": [RECIPIENT],
                                    "post": _post(True, templates),
                                    "options": _options()},
            "/hooks/{name}": {"post": _hook()},
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
                                                       "enum": ["received", "timeout"]}}},
                "Results": {"type": "object", "required": ["results"], "properties": {
                    "results": {"type": "array", "items": {"type": "object",
                                                           "required": ["to", "status"]}}}},
                "Error": {"type": "object", "required": ["error", "message"],
                          "additionalProperties": False,
                          "properties": {"error": {"type": "string"},
                                         "message": {"type": "string"}}},
            },
        },
    }
