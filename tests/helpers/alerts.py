"""An Alertmanager alert group for the tests: its labels and a route that notifies the
gateway's webhook URL at once."""

from __future__ import annotations

import json

LABELS = {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"}


def notifying(hook_url: str) -> str:
    """Grouped by alert name, sent at once, to the gateway's webhook URL."""
    return json.dumps({
        "route": {"receiver": "xmpp", "group_by": ["alertname"], "group_wait": "0s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "xmpp", "webhook_configs": [{"url": hook_url}]}]})
