"""The allocator setting for many idle TLS connections (``xmpp_post.allocator``)."""

from __future__ import annotations

import ctypes
import platform

import pytest

from xmpp_post import allocator


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the setting exists in glibc only")
def test_glibc_takes_the_fixed_threshold() -> None:
    assert allocator.keep_large_blocks_mapped() is True


def test_without_mallopt_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoMallopt:
        def __init__(self, name: object) -> None:
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert allocator.keep_large_blocks_mapped() is False
