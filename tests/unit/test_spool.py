"""The spool folder: one per process, locked while it lives; what a dead process left is
removed at start, a live one's never; a request's folder exists only once it has a file,
and goes when removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xmpp_post.errors import ConfigError
from xmpp_post.http.spool import SpoolDir, SpoolWriter


def test_a_dead_processs_folder_is_removed_at_start_a_live_ones_is_not(
        tmp_path: Path) -> None:
    root = tmp_path / "spool"
    live = SpoolDir(root)
    live.open()
    assert live.folder is not None and live.folder.parent == root
    assert oct(root.stat().st_mode & 0o777) == "0o700"
    # A process that made its folder, wrote a file, and was killed.
    code = ("import os, sys; from pathlib import Path; from xmpp_post.http.spool import "
            "SpoolDir; s = SpoolDir(Path(sys.argv[1])); s.open(); "
            "(s.folder / 'r1').mkdir(); (s.folder / 'r1' / 'f1').write_bytes(b'x' * 1000); "
            "print(s.folder, flush=True); os._exit(0)")
    dead = Path(subprocess.run([sys.executable, "-c", code, str(root)], check=True,
                               capture_output=True, text=True).stdout.strip())
    assert dead.exists()
    (root / "p123-nolock").mkdir()  # died before it made its lock file
    (root / "other").mkdir()  # not ours to touch
    second = SpoolDir(root)
    second.open()
    assert second.swept == 2 and not dead.exists() and not (root / "p123-nolock").exists()
    assert live.folder.exists() and (root / "other").exists()
    second.close()
    live.close()
    live.close()  # idempotent
    assert sorted(entry.name for entry in root.iterdir()) == ["other"]


async def test_a_requests_folder_is_made_by_its_first_file_and_removed(
        tmp_path: Path) -> None:
    spool = SpoolDir(tmp_path)
    spool.open()
    folder = spool.request_folder()
    assert len(spool) == 0  # a body that stays text costs no folder
    await folder.remove()
    writer = SpoolWriter(folder.new_path())
    await writer.write(b"a" * 600_000)
    await writer.write(b"b")
    await writer.close()
    assert writer.size == 600_001 and writer.path.read_bytes() == b"a" * 600_000 + b"b"
    empty = SpoolWriter(folder.new_path())
    await empty.close()
    assert empty.path.read_bytes() == b""
    assert len(spool) == 1
    await folder.remove()
    assert len(spool) == 0
    spool.close()


def test_a_root_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to make a folder of another user")
    root = tmp_path / "theirs"
    root.mkdir()
    os.chown(root, 65534, 65534)
    with pytest.raises(ConfigError) as raised:
        SpoolDir(root).open()
    assert raised.value.setting == "spool_dir"
