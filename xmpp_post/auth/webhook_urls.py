"""Webhook URLs: ``POST /hooks/xph_…``, where the URL itself is the secret.

Slack's and Mattermost's incoming webhooks work this way, so every tool that "notifies
Slack" or "Mattermost" can: Uptime Kuma, Gitea's and GitLab's integrations, Grafana's
Slack contact point, Alertmanager's ``slack_configs``, Apprise's ``mmost://``. The
secret is ``xph_`` and 32 random bytes (256 bits) in URL-safe base64; the configuration
keeps only its SHA-256 (``[webhooks.NAME]`` with ``verify = "url"``, which ``xmpp-post
webhook create`` prints).

The secret is looked up by its SHA-256 in a dict, as tokens are (``tokens``): no
comparison ever runs over the secret itself, and a lookup's timing depends only on the
digest of what the caller sent, which tells them nothing they could build a better guess
on (the secret has 256 random bits; finding one whose digest lands near a stored one is
finding a preimage). An unknown secret is ``UnknownWebhookUrl``: 404, like any path
that is not there, but counted by the per-address login throttle under the subject
``webhook_url``, for it is a guess. A reload (SIGHUP) adds and revokes at once; a
rotation is a second entry beside the first, removed once the tool has the new URL.

The secret never leaves this module in a log line, a metric label or an answer: the
request's ``via`` is ``webhook:NAME``, and a path is logged through ``loggable_path``,
which cuts a secret after a few characters.
"""

from __future__ import annotations

import hashlib
import secrets

from xmpp_post.auth import Presented
from xmpp_post.auth.webhooks import webhook_sender
from xmpp_post.config.live import LiveConfig
from xmpp_post.config.tokens_webhooks import URL_PREFIX
from xmpp_post.errors import UnknownWebhookUrl
from xmpp_post.model import Sender

PATH_PREFIX = "/hooks/" + URL_PREFIX
SECRET_BYTES = 32
SUBJECT = "webhook_url"  # what the throttle counts an unknown secret under
SHOWN = 4  # characters of a secret a log line keeps, enough to tell two apart


def new_secret() -> str:
    return URL_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "backslashreplace")).digest()


def secret_of(path: str) -> str | None:
    """The secret (``xph_…``) of a webhook URL's path; None for any other path."""
    if not path.startswith(PATH_PREFIX):
        return None
    return path[len("/hooks/"):]


def loggable_path(path: str) -> str:
    """``path`` fit for a log line: a webhook URL's secret cut after a few characters
    (``/hooks/xph_AbCd…``); any other path as it is."""
    if not path.startswith(PATH_PREFIX):
        return path
    return path[:len(PATH_PREFIX) + SHOWN] + "…"


class WebhookUrlScheme:
    """Claims ``/hooks/xph_…``; see the module docstring."""

    challenge = ""  # the URL is the credential: nothing to ask for

    def __init__(self, live: LiveConfig) -> None:
        self._live = live

    def authenticate(self, presented: Presented) -> Sender | None:
        secret = secret_of(presented.path)
        if secret is None:
            return None
        hook = self._live.webhook_urls.get(secret_digest(secret))
        if hook is None:
            raise UnknownWebhookUrl("no webhook is configured at this URL", subject=SUBJECT)
        subject = f"webhook:{hook.name}"
        return webhook_sender(self._live, hook, subject)
