"""The deployment files as shipped: the systemd unit is hardened, restarts and reloads
(systemd itself checks it, and HAProxy its file, in tests/e2e/test_deploy.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "xmpp-post.service"


def _unit_lines() -> list[str]:
    return [line.strip() for line in UNIT.read_text().splitlines()]



def test_the_unit_is_hardened_restarts_and_reloads() -> None:
    lines = _unit_lines()
    for wanted in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict",
                   "PrivateTmp=yes", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                   "LoadCredential=state-secret:/etc/xmpp-post/state-secret"):
        assert wanted in lines, wanted
    assert "--state-secret-file %d/state-secret" in UNIT.read_text()  # the credential
