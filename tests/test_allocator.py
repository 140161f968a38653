"""The allocator setting for many idle TLS connections (``xmpp_post.allocator``)."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from xmpp_post import allocator


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the setting exists in glibc only")
def test_glibc_takes_the_fixed_threshold() -> None:
    assert allocator.keep_large_blocks_mapped() is True


def test_without_a_c_library_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert allocator.keep_large_blocks_mapped() is False
