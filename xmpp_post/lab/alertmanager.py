"""A private Prometheus Alertmanager (Debian's ``prometheus-alertmanager``) on a free
loopback port, for tests and the demo: its cluster off, its storage in a throwaway
folder, its configuration given as text (JSON is YAML). ``start()`` returns once its
readiness endpoint answers; ``push`` fires (or, with ``ends``, resolves) alerts
through its API v2, as Prometheus would."""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from xmpp_post.lab.process import ChildProcess
from xmpp_post.lab.prosody import free_port

BINARY = "prometheus-alertmanager"
# Nowhere to send: an Alertmanager only for its API.
QUIET = json.dumps({"route": {"receiver": "none"}, "receivers": [{"name": "none"}]})


def installed() -> bool:
    return shutil.which(BINARY) is not None


class AlertmanagerServer(ChildProcess):
    name = BINARY

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="xmpp-post-alertmanager-"))
        super().__init__(self.workdir / "alertmanager.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, config: str = QUIET, timeout: float = 20.0) -> None:
        """Start with ``config`` (YAML or JSON text); return once it is ready."""
        if self.running:
            return
        config_file = self.workdir / "alertmanager.yml"
        config_file.write_text(config)
        command = shutil.which(BINARY) or f"/usr/bin/{BINARY}"
        self.spawn([command, f"--config.file={config_file}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=", f"--storage.path={self.workdir / 'data'}",
                    "--log.level=debug"], group=True)
        self.wait_ready(self._ready, timeout)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=0.5) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """One call to its API (blocking: for tests and the demo), its JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            text = resp.read()
        return json.loads(text) if text.strip() else None

    def push(self, labels: dict[str, str], annotations: dict[str, str] | None = None,
             ends: datetime | None = None) -> None:
        alert: dict[str, Any] = {"labels": labels, "annotations": annotations or {}}
        if ends is not None:
            alert["endsAt"] = ends.isoformat().replace("+00:00", "Z")
        self.api("POST", "/api/v2/alerts", [alert])

    def stop(self, timeout: float = 10.0) -> None:
        self.terminate(timeout=timeout, group=True)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> AlertmanagerServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
