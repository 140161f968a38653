"""ntfy publish requests parsed as the ntfy front parses them, and their refusals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from multidict import CIMultiDict

from xmpp_post.errors import ClientError
from xmpp_post.fronts.ntfy import Publication, parse_publish

RESERVED = frozenset({"msg", "healthz", "readyz", "metrics", "openapi.json", "hooks"})
FORM = "application/x-www-form-urlencoded"  # what `curl -d` sends


def publish(path: str = "/alerts", *, method: str = "POST",
            headers: Mapping[str, str] | None = None, query: Sequence[tuple[str, str]] = (),
            body: bytes | None = b"", content_type: str = FORM,
            max_text: int = 4096) -> Publication:
    return parse_publish(method, path, CIMultiDict(headers or {}), list(query), body,
                         content_type, reserved=RESERVED, max_text=max_text)


def refused(expected: type[ClientError], code: str, path: str = "/alerts",
            **kwargs: Any) -> ClientError:
    with pytest.raises(expected) as info:
        publish(path, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value
