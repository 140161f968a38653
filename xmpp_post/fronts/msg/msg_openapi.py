"""The OpenAPI description of the seed API (``POST <base>[/<recipient>…]``), built from
the constants its parser uses (fields, types, media types) and from the templates the
gateway loaded (the ``template`` parameter)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xmpp_post.config import Config
from xmpp_post.files import MAX_FILES
from xmpp_post.fronts import message_request as request
from xmpp_post.fronts.message_openapi import BOOL_TEXT, FIELD_SCHEMAS, TO
from xmpp_post.http.openapi import (
    HEADERS,
    REF,
    OpenApiPart,
    error_responses,
    options_operation,
)


def _fields_schema(json_body: bool) -> dict[str, Any]:
    properties = {name: FIELD_SCHEMAS[name] for name in request.FIELDS}
    if json_body:
        properties["to"] = {"oneOf": [TO, {"type": "array", "items": TO, "minItems": 1}]}
        return {"type": "object", "additionalProperties": False, "properties": properties}
    properties["to"] = {"oneOf": [TO, {"type": "array", "items": TO}]}
    properties["receipt"] = BOOL_TEXT
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _form_data_schema() -> dict[str, Any]:
    schema = _fields_schema(False)
    schema["properties"]["file"] = {
        "type": "array", "maxItems": MAX_FILES,
        "items": {"type": "string", "contentMediaType": "application/octet-stream"},
        "description": "Every part named file is a file: uploaded to the sender's server "
                       "(XEP-0363) and sent, after the text, as a message of its URL"}
    return schema


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
                   "schema": {"$ref": REF + "Results"}}}}
    operation: dict[str, Any] = {
        "summary": "Send a message as the authenticated user",
        "operationId": "sendTo" if with_recipient else "send",
        "security": [{"basic": []}, {"bearer": []}],
        "parameters": [*_query_parameters(templates), *HEADERS],
        "requestBody": {"required": True, "content": {
            request.TEXT: {"schema": {"type": "string"}},
            request.FORM: {"schema": _fields_schema(False)},
            request.JSON: {"schema": _fields_schema(True)},
            request.FORM_DATA: {"schema": _form_data_schema()},
        }},
        "responses": {
            "201": {"description": "The XMPP server acknowledged the message (or, with several "
                    "recipients, every message)",
                    "content": {"application/json": {"schema": {"oneOf": [
                        {"$ref": REF + "Receipt"},
                        {"$ref": REF + "Results"}]}}}},
            "207": results,
            **_TEMPLATE_SUCCESS,
            **error_responses(),
        },
    }
    return operation


RECIPIENT = {"name": "recipient", "in": "path", "required": True,
             "schema": {"type": "string", "minLength": 1},
             "description": "Full JID, bare JID, or a local part on the sender's domain"}


def part(config: Config, templates: Mapping[str, str]) -> OpenApiPart:
    """``templates``: the template names and descriptions to list."""
    base = config.base_path.rstrip("/")
    return OpenApiPart({
        base or "/": {"post": _post(False, templates), "options": options_operation()},
        base + "/{recipient}": {"parameters": [RECIPIENT], "post": _post(True, templates),
                                "options": options_operation()},
    })
