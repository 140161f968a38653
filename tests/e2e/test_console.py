"""The console command, run as a process: its help names every setting, and ``serve``
refuses to start on a slixmpp that lacks what the gateway patches."""

from __future__ import annotations

import subprocess
import sys

import slixmpp

from xmpp_post import config
from xmpp_post.xmpp import compat


def test_console_help_explains_every_option() -> None:
    run = subprocess.run([sys.executable, "-m", "xmpp_post", "serve", "--help"],
                         capture_output=True, text=True, check=True)
    for setting in config.SETTINGS:
        assert setting.flag in run.stdout, setting.flag
    assert "XMPP_POST_" in run.stdout
    top = subprocess.run([sys.executable, "-m", "xmpp_post", "--help"],
                         capture_output=True, text=True, check=True)
    assert "serve" in top.stdout and "example-config" in top.stdout


def test_serve_refuses_to_start_on_a_slixmpp_without_a_name_it_uses() -> None:
    """``xmpp-post serve`` checks before it connects or listens, and says why it stops."""
    script = (
        "import sys\n"
        "from slixmpp.plugins.xep_0198 import XEP_0198\n"
        "del XEP_0198._handle_outgoing\n"
        "from xmpp_post.cli import main\n"
        "sys.exit(main(['serve', '--domain', 'example.org', '--listen', '127.0.0.1:0',\n"
        "               '--xmpp-server', '127.0.0.1:9']))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 1, run.stderr
    assert (f"cannot serve: slixmpp {slixmpp.__version__} is not supported: "
            "XEP_0198._handle_outgoing is missing") in run.stderr
    assert f"written for slixmpp {compat.WRITTEN_FOR}" in run.stderr
    assert "listening" not in run.stderr and "Traceback" not in run.stderr
