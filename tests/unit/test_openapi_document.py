"""The OpenAPI document is valid and describes every route and field (schemathesis
holds it against the running gateway in tests/e2e/test_openapi.py)."""

from __future__ import annotations

from openapi_spec_validator import validate

from xmpp_post import config
from xmpp_post.fronts import message_request as request
from xmpp_post.service import api_document, web_app
from xmpp_post.testing import FakeRelay


def test_document_is_valid_openapi() -> None:
    validate(api_document(config.load({"domain": ["example.org"]}, environ={})))


def test_document_describes_every_route_and_field() -> None:
    cfg = config.load({"domain": ["example.org"]}, environ={})
    doc = api_document(cfg)
    app = web_app(cfg, FakeRelay())
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):  # aiohttp adds HEAD to every GET; * is a 405
            continue
        path = route.resource.canonical if route.resource else ""
        assert path in doc["paths"], path
        assert route.method.lower() in doc["paths"][path], (route.method, path)
    body = doc["paths"]["/msg"]["post"]["requestBody"]["content"]
    assert set(body) == set(request.MEDIA_TYPES)
    assert set(body[request.JSON]["schema"]["properties"]) == set(request.FIELDS)


def test_a_signed_webhook_takes_nothing_but_its_name_and_body() -> None:
    hook = api_document(config.load({"domain": ["example.org"]},
                                    environ={}))["paths"]["/hooks/{name}"]["post"]
    assert [(p["in"], p["name"]) for p in hook["parameters"]] == [("path", "name")]
    assert "query_not_allowed" in hook["description"] and "400" in hook["responses"]
