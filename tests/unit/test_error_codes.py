"""The registry of error codes (http.error_codes) is complete and true.

Every code word the package can raise is found in its source (the ``code=`` of an error,
a kind's default code, the helpers that make one, the tables of XMPP conditions) and
must be registered with the status ``status_of`` gives it; every registered code must be
raised somewhere. The documentation's error table is generated from the registry.
"""

from __future__ import annotations

import ast
import functools
import inspect
from pathlib import Path

import pytest

from xmpp_post import errors
from xmpp_post.errors import GatewayError, XmppError
from xmpp_post.fronts.ntfy.reply import NTFY_CODES
from xmpp_post.http.error_codes import BY_CODE, ERROR_CODES
from xmpp_post.http.render import HttpStatusError, headers_of, render_error, status_of
from xmpp_post.xmpp import conditions

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "xmpp_post"
KINDS: dict[str, type[GatewayError]] = {
    name: kind for name, kind in vars(errors).items()
    if inspect.isclass(kind) and issubclass(kind, GatewayError)}
KINDS["HttpStatusError"] = HttpStatusError
# Helpers that make an error from a code word given as their argument: (helper, the
# argument's position, the prefix of the code, the kind they make).
HELPERS: dict[tuple[str, str], tuple[int, str, type[GatewayError]]] = {
    ("xmpp/session.py", "_unavailable"): (1, "", errors.XmppUnavailable),
    ("auth/webhooks.py", "_Refused"): (0, "", errors.CredentialsRefused),
    ("fronts/fields.py", "_invalid"): (0, "invalid_", errors.BadRequest),
    ("fronts/fields.py", "_token"): (0, "invalid_", errors.BadRequest),
    ("fronts/ntfy/publish.py", "_url"): (0, "invalid_", errors.BadRequest),
}
# Where a code is built from a name (f"invalid_{name}"): the helpers above cover them.
DYNAMIC = {("fronts/fields.py", "_invalid"), ("fronts/ntfy/publish.py", "_url")}

# A code word found: (code, its kind if known, the XMPP condition: "" for none, None if
# known only at run time, where).
Found = tuple[str, "type[GatewayError] | None", "str | None", str]


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _text(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _scan(path: Path) -> tuple[list[Found], list[str]]:
    where = str(path.relative_to(PACKAGE))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[Found] = []
    dynamic: list[str] = []
    for outer in ast.walk(tree):
        if isinstance(outer, ast.ClassDef) and outer.name in KINDS:
            for stmt in outer.body:
                if (isinstance(stmt, ast.Assign) and _name(stmt.targets[0]) == "code"
                        and (code := _text(stmt.value))):
                    found.append((code, KINDS[outer.name], "", where))
        if isinstance(outer, ast.FunctionDef):
            for node in ast.walk(outer):
                if (isinstance(node, ast.keyword) and node.arg == "code"
                        and isinstance(node.value, ast.JoinedStr)):
                    dynamic.append(f"{where}:{outer.name}")
        if isinstance(outer, ast.Assign):
            target, value = outer.targets[0], outer.value
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                target, value = target.elts[0], value.elts[0]
            if _name(target) == "code" and (code := _text(value)):
                found.append((code, None, None, where))
        if not isinstance(outer, ast.Call):
            continue
        name = _name(outer.func)
        keywords = {k.arg: k.value for k in outer.keywords}
        if (code := _text(keywords.get("code"))) is not None:
            condition = _text(keywords["condition"]) if "condition" in keywords else ""
            found.append((code, KINDS.get(name), condition, where))
        if (where, name) in HELPERS:
            position, prefix, kind = HELPERS[where, name]
            if len(outer.args) > position and (code := _text(outer.args[position])):
                found.append((prefix + code, kind, "", where))
    return found, dynamic


@functools.cache  # three tests read the same scan
def _everything() -> tuple[list[Found], set[str]]:
    found: list[Found] = []
    dynamic: set[str] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        more, where = _scan(path)
        found += more
        dynamic.update(where)
    return found, dynamic


def _refusals() -> list[GatewayError]:
    """The errors the tables of XMPP conditions make, for every condition they know."""
    made: list[GatewayError] = []
    for condition in [*conditions.ROOM_JOIN, "other-condition"]:
        made.append(conditions.room_join_refused("r@muc.x", condition, ""))
    made.append(conditions.room_message_refused("r@muc.x", "forbidden", ""))
    for condition in [*conditions.RECIPIENT, "forbidden", "resource-constraint"]:
        for error_type in ("cancel", "wait"):
            made.append(conditions.recipient_refused("b@x", condition, error_type, ""))
    for error_type in ("cancel", "wait"):  # XEP-0191: a block is not-acceptable
        made.append(conditions.recipient_refused("b@x", "not-acceptable", error_type, "",
                                                 blocked=True))
    for condition in [*conditions.TRANSIENT_AUTH, "not-authorized"]:
        made.append(conditions.login_failed(condition, 5))
    return made


def _statuses(code: str) -> set[int]:
    entry = BY_CODE[code]
    return {entry.status, *entry.also}


def _sample(kind: type[GatewayError], code: str, condition: str) -> GatewayError:
    error = kind.__new__(kind)
    GatewayError.__init__(error, "sample", code=code)
    if isinstance(error, XmppError):
        error.condition, error.text = condition, ""
    return error


def test_every_code_raised_is_registered_with_its_status() -> None:
    found, _ = _everything()
    assert len(found) > 80  # the scan sees the package
    for code, _kind, _condition, where in found:
        assert code in BY_CODE, f"{where} raises {code!r}: add it to http/error_codes.py"
    for code, kind, condition, where in found:
        if kind is None or kind is HttpStatusError or condition is None:
            continue  # the status comes with the call, or from a condition known at run time
        status = status_of(_sample(kind, code, condition or ""))
        assert status in _statuses(code), (where, code, status)
    for error in _refusals():
        assert error.code in BY_CODE, error.code
        assert status_of(error) in _statuses(error.code), (error.code, error)


def test_no_code_is_built_where_the_scan_cannot_see_it() -> None:
    _, dynamic = _everything()
    assert {tuple(d.split(":")) for d in dynamic} == DYNAMIC


def test_every_registered_code_is_raised_somewhere() -> None:
    found, _ = _everything()
    raised = {code for code, *_ in found} | {error.code for error in _refusals()}
    assert set(BY_CODE) - raised == set()
    assert len(BY_CODE) == len(ERROR_CODES)  # each code once


def test_ntfy_numbers_name_registered_codes() -> None:
    assert set(NTFY_CODES) <= set(BY_CODE)


@pytest.mark.parametrize(("error", "headers"), [
    (errors.Overloaded("full", retry_after=7), {"Retry-After": "7"}),
    (errors.RequestTimeout("slow", code="client_too_slow"), {"Connection": "close"}),
    (errors.MethodNotAllowed("no", allowed=("GET", "POST")), {"Allow": "GET, POST"}),
    (errors.BadRequest("bad", code="invalid_json"), {}),
    (errors.XmppUnavailable("down", code="stream_error", retry_after=3),
     {"Retry-After": "3"}),
])
def test_errors_carry_values_the_http_edge_renders_as_headers(
        error: GatewayError, headers: dict[str, str]) -> None:
    assert headers_of(error) == headers
    response = render_error(error)
    for name, value in headers.items():
        assert response.headers[name] == value
    assert "Retry-After" in response.headers or "Retry-After" not in headers
