"""Every setting of the reliability work is documented, validated and reaches the Config."""

from __future__ import annotations

import pytest

from xmpp_post import config
from xmpp_post.errors import ConfigError


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
