"""The console command: its help names every setting (run as a process)."""

from __future__ import annotations

import subprocess
import sys

from xmpp_post import config


def test_console_help_explains_every_option() -> None:
    run = subprocess.run([sys.executable, "-m", "xmpp_post", "serve", "--help"],
                         capture_output=True, text=True, check=True)
    for setting in config.SETTINGS:
        assert setting.flag in run.stdout, setting.flag
    assert "XMPP_POST_" in run.stdout
    top = subprocess.run([sys.executable, "-m", "xmpp_post", "--help"],
                         capture_output=True, text=True, check=True)
    assert "serve" in top.stdout and "example-config" in top.stdout
