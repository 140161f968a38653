"""The deployment files and the package, kept true: the systemd unit passes
``systemd-analyze verify``, the HAProxy file passes ``haproxy -c`` (and runs in
test_cluster_proxy.py), the wheel and sdist pass ``twine check``, and ``pipx install``
of the wheel gives a working ``xmpp-post``, without AGPL code (OMEMO 0.3's Oldmemo is the
extra ``oldmemo``: docs/omemo.md)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from xmpp_post.lab import haproxy
from xmpp_post.lab.prosody import free_port
from xmpp_post.lab.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "xmpp-post.service"
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None,
                    reason="systemd-analyze is not installed (Debian package systemd; "
                           "scripts/setup installs it)")
def test_the_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    # verify checks that ExecStart's program exists: point it at one that does.
    program = tmp_path / "xmpp-post"
    program.write_text(f"#!/bin/sh\nexec {sys.executable} -m xmpp_post \"$@\"\n")
    program.chmod(0o755)
    text, count = re.subn(r"(?m)^ExecStart=/usr/local/bin/xmpp-post ",
                          f"ExecStart={program} ", UNIT.read_text())
    assert count == 1
    unit = tmp_path / UNIT.name
    unit.write_text(text)
    verified = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True,
                              text=True, timeout=60)
    assert verified.returncode == 0 and verified.stderr.strip() == "", verified.stderr
    # Its exposure as systemd rates it: 1.4 of 10 ("OK") when this was written.
    rated = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true", "--threshold=20",
                            str(unit)], capture_output=True, text=True, timeout=60)
    assert rated.returncode == 0, rated.stdout[-2000:]


def test_haproxy_accepts_the_file_as_deployed_and_as_tested(tmp_path: Path) -> None:
    text = HAPROXY_CFG.read_text()
    for wanted in ("balance hdr(Authorization)", "hash-type consistent",
                   "http-check send meth GET uri /readyz", "send-proxy-v2 check-send-proxy"):
        assert wanted in text, wanted
    tested = tmp_path / "tested.cfg"
    tested.write_text(haproxy.render(text, port=free_port(),
                                     servers=[("gw1", "127.0.0.1", 1)],
                                     stats_socket=tmp_path / "admin.sock"))
    for path in (HAPROXY_CFG, tested):
        checked = subprocess.run([haproxy.command(), "-c", "-f", str(path)],
                                 capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The sdist, and the wheel built from it (as ``python -m build`` does)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    yield out


def test_wheel_and_sdist_pass_twine_check(dist: Path) -> None:
    files = [str(next(dist.glob("*.tar.gz"))), str(next(dist.glob("*.whl")))]
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listing = subprocess.run(["tar", "tzf", files[0]], capture_output=True, text=True,
                             check=True).stdout
    for needed in ("deploy/haproxy.cfg", "deploy/xmpp-post.service", "tests/conftest.py",
                   "xmpp_post/state/redis.py", "xmpp_post/fronts/web/static/index.html",
                   "xmpp_post/templates/samples/github.json"):
        assert needed in listing, needed


def test_the_agpl_omemo_0_3_backend_is_only_in_the_extra(dist: Path) -> None:
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as opened:
        name = next(n for n in opened.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = opened.read(name).decode()
    assert "Provides-Extra: oldmemo" in metadata  # a name without dots: old pip finds it too
    needs = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    oldmemo = [line for line in needs if line.lower().startswith("requires-dist: oldmemo")]
    assert oldmemo and all('extra == "oldmemo"' in line or 'extra == "test"' in line
                           for line in oldmemo), oldmemo
    assert not any("omemo" in line.lower() and "slixmpp" in line.lower() and "extra" not in line
                   for line in needs)


def _install(wheel: Path, home: Path) -> Path:
    """``pipx install`` the wheel into a private pipx home; the command's path. Where
    pipx is missing, the same by hand: a venv of its own, the wheel and its dependencies."""
    bin_dir = home / "bin"
    if importlib.util.find_spec("pipx") is not None:
        env = {**os.environ, "PIPX_HOME": str(home / "pipx"), "PIPX_BIN_DIR": str(bin_dir),
               "PIPX_MAN_DIR": str(home / "man")}
        subprocess.run([sys.executable, "-m", "pipx", "install", "--pip-args=--no-compile",
                        str(wheel)], env=env, check=True, capture_output=True, timeout=300)
        return bin_dir / "xmpp-post"
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([venv / "bin" / "pip", "install", "-q", "--no-compile", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return venv / "bin" / "xmpp-post"


def test_pipx_install_gives_a_working_command(dist: Path, tmp_path: Path,
                                              redis_server: RedisServer) -> None:
    command = _install(next(dist.glob("*.whl")), tmp_path)
    installed = {path.name for path in tmp_path.rglob("site-packages/*")}
    assert "twomemo" in installed, sorted(installed)
    assert not installed & {"oldmemo", "slixmpp_omemo"}, "AGPL code in the default install"
    version = subprocess.run([command, "--version"], capture_output=True, text=True,
                             check=True, timeout=30)
    assert version.stdout.startswith("xmpp-post ")
    secret = tmp_path / "secret"
    secret.write_text("s" * 48)
    secret.chmod(0o600)
    port = free_port()
    proc = subprocess.Popen(
        [command, "serve", "--domain", "example.org", "--listen", f"127.0.0.1:{port}",
         "--redis-url", redis_server.url, "--state-secret-file", str(secret)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    assert r.read() == b'{"status": "ready"}'  # Redis answers, too
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
                time.sleep(0.05)
        # The package data came along: the web page's files, the templates' samples.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/msg/static/styling.js") as r:
            assert b"export function renderStyled" in r.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/templates") as r:
            listed = json.loads(r.read())["templates"]
            assert all(entry["sample"] for entry in listed), listed
        proc.send_signal(signal.SIGHUP)  # systemctl reload: the process keeps running
        proc.send_signal(signal.SIGTERM)
        _, errors = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "reload" in errors and "stopped" in errors, errors
