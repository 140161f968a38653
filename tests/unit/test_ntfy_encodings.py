"""ntfy publish requests: characters XML cannot carry, and how header values are decoded."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.ntfy import publish, refused
from xmpp_post.errors import BadRequest


@pytest.mark.parametrize("kwargs", [
    {"body": b"bell \x07"}, {"headers": {"Title": "nul \x00"}},
    {"query": [("tags", "a\x1bb")]}, {"query": [("message", "\ufffe")]},
    {"headers": {"Actions": "view, Bell\x07, https://x"}},
])
def test_characters_xml_cannot_carry_are_400(kwargs: dict[str, Any]) -> None:
    refused(BadRequest, "invalid_character", **kwargs)


def test_lone_surrogates_in_json_are_400() -> None:
    refused(BadRequest, "invalid_character", "/", body=b'{"topic": "t", "title": "\\ud800"}')


# --- header encodings ----------------------------------------------------------------

@pytest.mark.parametrize(("raw", "text"), [
    ("=?UTF-8?B?8J+HqfCfh6o=?=", "🇩🇪"),
    ("=?UTF-8?Q?=C3=84pfel?=", "Äpfel"),
    ("=?utf-8?q?K=C3=A4se_und_Brot?=", "Käse und Brot"),
    ("=?UTF-8?B?SGVs?= =?UTF-8?B?bG8=?=", "Hello"),
    ("Re: =?ISO-8859-1?Q?=C4rger?= now", "Re: Ärger now"),
    ("=?UTF-8?B?not base64!?=", "=?UTF-8?B?not base64!?="),
    ("=?klingon?Q?abc?=", "=?klingon?Q?abc?="),
    ("1 + 1 =? 2", "1 + 1 =? 2"),
])
def test_rfc2047_encoded_words(raw: str, text: str) -> None:
    assert publish(headers={"Title": raw}).title == text


def test_utf8_read_as_latin1_is_repaired() -> None:
    assert publish(headers={"Title": "Ã\x84pfel ð\x9f\x98\x80"}).title == "Äpfel 😀"
    assert publish(headers={"Title": "Ä"}).title == "Ä"  # real ISO-8859-1 text stays


def test_undecodable_header_bytes_are_latin1() -> None:
    # aiohttp hands over bytes that are not UTF-8 as lone surrogates (surrogateescape)
    raw = "Käse".encode("latin-1").decode("utf-8", "surrogateescape")
    assert publish(headers={"Title": raw}).title == "Käse"
    refused(BadRequest, "invalid_encoding", headers={"Title": "\ud800"})


def test_undecodable_query_values_are_400() -> None:
    refused(BadRequest, "invalid_encoding", query=[("title", "K\udce4se")])


def test_unknown_query_parameters_are_ignored() -> None:
    assert publish(query=[("auth", "QmFzaWM"), ("utm_source", "x")], body=b"hi").message == "hi"
