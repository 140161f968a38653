"""The demo command (README.md) works: console command, real curl, a message arrives."""

from __future__ import annotations

import subprocess
import sys


def test_demo_shows_a_message_arriving() -> None:
    run = subprocess.run([sys.executable, "-m", "xmpp_post.lab.demo", "--once"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "bob@localhost received from alice@localhost/xmpp-post." in run.stdout
    assert "'Hello from xmpp-post!'" in run.stdout
    assert '"from": "alice@localhost"' in run.stdout  # curl printed the 201 body
    assert "demo-password" not in run.stderr  # the gateway's log holds no password
