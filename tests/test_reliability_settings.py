"""Every setting of the reliability work is documented, validated and reaches the Config."""

from __future__ import annotations

from pathlib import Path

import pytest

from xmpp_post import config
from xmpp_post.errors import ConfigError

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_new_setting_is_documented_once() -> None:
    text = (DOCS / "settings-reliability.md").read_text()
    names = ("request_timeout", "retry_after", "client_timeout", "max_header_size",
             "max_concurrent_requests", "max_concurrent_opens", "auth_failure_window",
             "auth_failure_limit", "auth_failure_limit_address",
             "auth_failure_limit_account", "idempotency_window", "idempotency_max_entries")
    for name in names:
        assert name in config.BY_NAME, name
        assert text.count(f"- `{name}` ") == 1, name
    assert (DOCS / "reliability.md").is_file()


@pytest.mark.parametrize("name", ["request_timeout", "client_timeout", "max_concurrent_opens",
                                  "auth_failure_limit", "idempotency_window"])
def test_zero_is_refused_naming_the_setting(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load({"domain": ["example.org"], name: "0"}, environ={})
    assert caught.value.setting == name


def test_environment_reaches_the_config() -> None:
    cfg = config.load({"domain": ["example.org"]},
                      environ={"XMPP_POST_REQUEST_TIMEOUT": "7.5",
                               "XMPP_POST_MAX_HEADER_SIZE": "16KiB"})
    assert cfg.request_timeout == 7.5 and cfg.max_header_size == 16384
