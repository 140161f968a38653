"""The web front's part of ``/openapi.json``: the template endpoints always, the page, its
files, its capabilities and the status with ``web`` on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xmpp_post.config import Config
from xmpp_post.fronts.message_openapi import FIELD_SCHEMAS
from xmpp_post.fronts.templated import MESSAGE_FIELDS
from xmpp_post.fronts.web import web_page as page
from xmpp_post.fronts.web import web_render as render
from xmpp_post.fronts.web import web_status as status
from xmpp_post.http import openapi

SECURITY: list[dict[str, list[str]]] = [{"basic": []}, {"bearer": []}]
_TEXT = {"type": ["string", "null"]}
_RECIPIENT_ERROR = {"type": "object", "required": ["to", "status", "error", "message"]}
_STANZA = {"type": "object", "required": ["to", "type", "stanza"],
           "properties": {"to": {"type": "string"}, "type": {"type": "string"},
                          "stanza": {"type": "string"}}}
RENDERED = {
    "type": "object", "required": ["template", "skipped", "subject", "body", "messages"],
    "properties": {
        "template": {"type": "string"}, "skipped": {"type": "boolean"},
        "subject": _TEXT, "body": _TEXT,
        "messages": {"type": "array", "items": {"oneOf": [_STANZA, _RECIPIENT_ERROR]}}},
}
TEMPLATES = {
    "type": "object", "required": ["templates"],
    "properties": {"templates": {"type": "array", "items": {
        "type": "object", "required": ["name", "description", "builtin", "reply", "sample"],
        "properties": {
            "name": {"type": "string"}, "description": {"type": "string"},
            "builtin": {"type": "boolean"},
            "reply": {"type": "string", "enum": ["json", "slack", "discord"]},
            "sample": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["headers", "payload"],
                "properties": {"headers": {"type": "object"}, "payload": {}}}]}}}}},
}
STATUS = {
    "type": "object", "required": ["sessions", "refusals", "errors"],
    "properties": {
        "sessions": {"type": "object", "required": ["open", "max", "list"]},
        "refusals": {"type": "object",
                     "required": ["window_seconds", "recent", "since_start"]},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["time", "level", "logger", "message"]}},
        "bots": {"type": "array"}},
}
CAPABILITIES = {
    "type": "object", "required": ["base_path", "types", "send", "status"],
    "properties": {"base_path": {"type": "string"},
                   "types": {"type": "array", "items": {"type": "string"}},
                   "send": {"type": "object", "properties": {
                       "files": {"type": "boolean"}, "encrypt": {"type": "boolean"}}},
                   "status": {"type": "boolean"}},
}


def _json(description: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _render(templates: Mapping[str, str]) -> dict[str, Any]:
    name_schema: dict[str, Any] = {"type": "string"}
    if templates:
        name_schema["enum"] = list(templates)
    fields = FIELD_SCHEMAS
    params: list[dict[str, Any]] = [
        {"name": "name", "in": "path", "required": True, "schema": name_schema,
         "description": "The template"},
        {"name": "to", "in": "query", "required": False, "style": "form", "explode": True,
         "schema": {"type": "array", "items": fields["to"]},
         "description": "The recipients the stanzas are addressed to (default: the "
                        "sender)"},
        *({"name": field, "in": "query", "required": False,
           "schema": fields[field] if field != "receipt" else {"type": "string"}}
          for field in MESSAGE_FIELDS),
    ]
    payload: dict[str, Any] = {"schema": {}}
    return {"post": {
        "summary": "What a template makes of a payload, and the stanzas it would send; "
                   "nothing is sent",
        "operationId": "renderTemplate",
        "security": SECURITY,
        "parameters": [*params, *openapi.HEADERS],
        "requestBody": {"required": True, "content": {
            "application/json": payload,
            "application/x-www-form-urlencoded": {"schema": {
                "type": "object", "properties": {"payload": {"type": "string"}}}}}},
        "responses": {"200": _json("Rendered (or skipped by the template)", RENDERED),
                      **openapi.error_responses()},
    }}


def _web(config: Config) -> dict[str, Any]:
    where = page.page_path(config)
    files = {kind: {"schema": {"type": "string"}}
             for kind in sorted(set(page.CONTENT_TYPES.values()))}
    not_found = {"404": {"description": "No such file", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}}
    paths: dict[str, Any] = {
        where: {"get": {"summary": "The web page", "operationId": "webPage", "responses": {
            "200": {"description": "The page",
                    "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        where + "static/{name}": {"get": {
            "summary": "A file of the web page", "operationId": "webFile",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string", "minLength": 1}}],
            "responses": {"200": {"description": "The file", "content": files},
                          "304": {"description": "Not modified (If-None-Match)"},
                          **not_found}}},
        page.CAPABILITIES: {"get": {
            "summary": "What the web page may offer on this gateway",
            "operationId": "webCapabilities",
            "responses": {"200": _json("Capabilities", CAPABILITIES)}}},
        status.ROUTE: {"get": {
            "summary": "The gateway's state: sessions, refusals by code, the last errors "
                       "(for the admins)", "operationId": "webStatus", "security": SECURITY,
            "parameters": [header for header in openapi.HEADERS
                           if header["name"] != "Idempotency-Key"],
            "responses": {"200": _json("The state", STATUS), **openapi.error_responses()}}},
    }
    if page.redirects_root(config):
        paths["/"] = {"get": {"summary": "Redirects to the web page", "operationId": "toPage",
                              "responses": {"302": {"description": "To the web page"}}}}
    return paths


def paths(config: Config, templates: Mapping[str, str]) -> dict[str, Any]:
    """The web front's path items (merge them: ``/`` may also be ntfy's)."""
    found: dict[str, Any] = {
        render.LIST: {"get": {"summary": "The templates, with a sample payload for each "
                                         "built-in", "operationId": "listTemplates",
                              "responses": {"200": _json("The templates", TEMPLATES)}}},
        render.RENDER: _render(templates),
    }
    if config.web:
        found.update(_web(config))
    return found


def part(config: Config, templates: Mapping[str, str]) -> openapi.OpenApiPart:
    return openapi.OpenApiPart(paths(config, templates))
