"""ntfy's ?auth= parameter, topics to recipients, the [topics] table, package hygiene."""

from __future__ import annotations

import ast
import base64
import subprocess
import sys
from pathlib import Path

import pytest

from xmpp_post.errors import BadRequest, ConfigError, Unauthorized
from xmpp_post.fronts.ntfy import (
    auth_from_query,
    decode_auth_param,
    recipients_for,
    validate_topics,
)

# --- ?auth= --------------------------------------------------------------------------

HEADERS = ["Basic dXNlckBleGFtcGxlLm9yZzpwdw==", "Bearer tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2",
           "Basic YTo/Pz4+", "bearer x"]


@pytest.mark.parametrize("header", HEADERS)
@pytest.mark.parametrize("variant", ["standard", "standard-unpadded", "urlsafe",
                                     "urlsafe-unpadded"])
def test_auth_param_in_every_alphabet(header: str, variant: str) -> None:
    encode = base64.urlsafe_b64encode if variant.startswith("urlsafe") else base64.b64encode
    value = encode(header.encode()).decode()
    if variant.endswith("unpadded"):
        value = value.rstrip("=")
    assert decode_auth_param(value) == header


def test_ntfys_documented_example() -> None:
    assert decode_auth_param("QmFzaWMgZEdWemRIVnpaWEk2Wm1GclpYQmhjM04zYjNKaw") \
        == "Basic dGVzdHVzZXI6ZmFrZXBhc3N3b3Jk"


GARBAGE = [
    "", "   ", "not base64!", "QmFzaWM", "Q", "QmFz=aWM", "%%%",
    base64.b64encode(b"Basic").decode(),  # no credentials
    base64.b64encode(b"Digest abc").decode(),  # another scheme
    base64.b64encode(b"Basic abc\r\nX-Evil: 1").decode(),  # header injection
    base64.b64encode(b"Basic \xff\xfe").decode(),  # not ASCII
    base64.b64encode("Bearer tök".encode()).decode(),
]


@pytest.mark.parametrize("value", GARBAGE)
def test_garbage_auth_param_is_401_without_echo(value: str) -> None:
    with pytest.raises(Unauthorized) as info:
        decode_auth_param(value)
    assert info.value.code == "invalid_auth_param"
    if value.strip():
        assert value not in info.value.message


def test_auth_from_query() -> None:
    token = base64.b64encode(b"Bearer abc").decode()
    assert auth_from_query([("title", "x")]) is None
    assert auth_from_query([("auth", ""), ("Authorization", token)]) == "Bearer abc"
    assert auth_from_query([("AUTH", token)]) == "Bearer abc"
    with pytest.raises(Unauthorized):
        auth_from_query([("auth", "???")])


# --- topics to recipients ------------------------------------------------------------

TABLE = validate_topics({
    "ops": ["ops@conference.example.org", "Alice@Example.org", "alice@example.org"],
    "Backups": ["bob@example.org"],
})


def test_topics_table_is_normalized() -> None:
    assert TABLE == {"ops": ("ops@conference.example.org", "alice@example.org"),
                     "Backups": ("bob@example.org",)}


def test_a_topic_in_the_table_goes_to_a_room_and_several_users() -> None:
    assert recipients_for("ops", TABLE, "example.net") == [
        "ops@conference.example.org", "alice@example.org"]
    assert recipients_for("OPS", TABLE, "example.net") == recipients_for("ops", TABLE, "x")
    assert recipients_for("backups", TABLE, "example.net") == ["bob@example.org"]


def test_any_other_topic_is_a_user_on_the_senders_domain() -> None:
    assert recipients_for("bob", TABLE, "example.org") == ["bob@example.org"]
    assert recipients_for("Carol_2", {}, "example.org") == ["carol_2@example.org"]


@pytest.mark.parametrize("topic", ["", "a b", "x@y", "x" * 65])
def test_invalid_topics_have_no_recipients(topic: str) -> None:
    with pytest.raises(BadRequest) as info:
        recipients_for(topic, TABLE, "example.org")
    assert info.value.code == "invalid_topic"


@pytest.mark.parametrize(("table", "problem"), [
    (["ops"], "table"),
    ({"a b": ["x@example.org"]}, "topic name"),
    ({"x" * 65: ["x@example.org"]}, "topic name"),
    ({"msg": ["x@example.org"]}, "gateway's own paths"),
    ({"ops": ["x@example.org"], "OPS": ["y@example.org"]}, "twice"),
    ({"ops": []}, "non-empty array"),
    ({"ops": "x@example.org"}, "non-empty array"),
    ({"ops": ["alice"]}, "bare JID"),
    ({"ops": ["alice@example.org/phone"]}, "bare JID"),
    ({"ops": ["a@b@c"]}, "bare JID"),
    ({"ops": [5]}, "bare JID"),
    ({"ops": [f"u{n}@example.org" for n in range(51)]}, "at most"),
])
def test_bad_topics_tables(table: object, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_topics(table, reserved=frozenset({"msg", "healthz"}))
    assert info.value.setting == "topics"
    assert problem in info.value.problem


# --- hygiene -------------------------------------------------------------------------

PACKAGE = Path(__file__).resolve().parents[2] / "xmpp_post" / "fronts" / "ntfy"


def test_the_core_imports_no_http_or_xmpp_library() -> None:
    """Every module of the front but its routes (the aiohttp face)."""
    for path in PACKAGE.glob("*.py"):
        if path.name == "ntfy_routes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("aiohttp", "slixmpp"), (path.name, name)
        assert len(path.read_text(encoding="utf-8").splitlines()) < 400, path.name


def test_importing_the_package_loads_no_aiohttp() -> None:
    code = "import sys, xmpp_post.fronts.ntfy; print('aiohttp' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=PACKAGE.parents[2])
    assert done.stdout.strip() == "False"
