"""The OpenAPI description of ``POST /hooks/NAME`` and ``POST /hooks/xph_…``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xmpp_post.config import Config
from xmpp_post.fronts import message_request as request
from xmpp_post.http.openapi import REF, OpenApiPart, error_responses


def _hook() -> dict[str, Any]:
    json_or_form = {"schema": {"type": "object"}}
    sent = {"description": "Sent to the webhook's recipients",
            "content": {"application/json": {"schema": {"oneOf": [
                {"$ref": REF + "Receipt"},
                {"$ref": REF + "Results"}]}}}}
    return {
        "summary": "A signed webhook's delivery, rendered by its template",
        "description": "Proven by the tool's signature over the raw body (the webhook's "
                       "`verify` scheme). Takes no query string, which no signature "
                       "covers (400 `query_not_allowed`): recipients, message fields and "
                       "nick come from the configuration. A redelivery with the scheme's "
                       "own delivery id gets the first answer (`Idempotent-Replayed: "
                       "true`) and sends nothing; `Idempotency-Key` is not used here.",
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
                        "schema": {"$ref": REF + "Results"}}}},
            **error_responses(),
        },
    }


def _hook_url() -> dict[str, Any]:
    json_or_form = {"schema": {"type": "object"}}
    ok = {"description": "Sent (Slack's and Mattermost's answer)",
          "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "summary": "A webhook URL's delivery (Slack or Mattermost JSON), rendered by its "
                   "template; the URL is the secret",
        "operationId": "hookUrl",
        "parameters": [{"name": "secret", "in": "path", "required": True,
                        "schema": {"type": "string", "minLength": 1},
                        "description": "What follows xph_ in the URL that 'xmpp-post "
                                       "webhook create' printed"}],
        "requestBody": {"required": True, "content": {request.JSON: json_or_form,
                                                      request.FORM: json_or_form}},
        "responses": {
            "200": ok,
            "204": {"description": "Sent (a template whose tool wants no body)"},
            "207": {"description": "One outcome per recipient; some failed",
                    "content": {"application/json": {
                        "schema": {"$ref": REF + "Results"}}}},
            **error_responses(),
        },
    }


def part(_config: Config, _templates: Mapping[str, str]) -> OpenApiPart:
    return OpenApiPart({"/hooks/xph_{secret}": {"post": _hook_url()},
                        "/hooks/{name}": {"post": _hook()}})
