"""Prometheus metrics of one gateway (its own registry, so several can share a process)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
DELIVERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("xmpp_post_http_requests", "HTTP requests by route, method "
                                "and status", ["route", "method", "status"], registry=r)
        self.delivery = Histogram("xmpp_post_delivery_seconds", "Seconds from a valid request "
                                  "to the XMPP server's acknowledgement of its message",
                                  buckets=DELIVERY_BUCKETS, registry=r)
        self.sessions_open = Gauge("xmpp_post_sessions_open", "XMPP sessions open now",
                                   registry=r)
        self.session_opens = Counter("xmpp_post_session_opens", "XMPP sessions opened",
                                     registry=r)
        self.session_open_failures = Counter("xmpp_post_session_open_failures", "XMPP session "
                                             "opens that failed, by error code", ["reason"],
                                             registry=r)
        self.ack_timeouts = Counter("xmpp_post_ack_timeouts", "Messages the XMPP server did "
                                    "not acknowledge in time", registry=r)
        self.rate_limited = Counter("xmpp_post_rate_limited", "Requests refused with 429",
                                    registry=r)
        self.account_login_failures = Counter(
            "xmpp_post_account_login_failures", "Logins the XMPP server refused for an "
            "account of [accounts] (its configured password)", ["account"], registry=r)
        self.credential_requests = Counter(
            "xmpp_post_credential_requests", "Requests authenticated by a token or made to "
            "a webhook, by kind (token, webhook) and name", ["kind", "name"], registry=r)
        self.credential_failures = Counter(
            "xmpp_post_credential_failures", "Those of them that failed (any status but "
            "2xx: a bad signature, a scope, a rate, an XMPP failure)", ["kind", "name"],
            registry=r)
        self.unknown_tokens = Counter("xmpp_post_unknown_tokens", "Requests with a token "
                                      "that is not configured (unknown or revoked)",
                                      registry=r)
        self.unknown_webhook_urls = Counter(
            "xmpp_post_unknown_webhook_urls", "Requests to a webhook URL (/hooks/xph_…) "
            "that is not configured (unknown or revoked)", registry=r)
        self.reloads = Counter("xmpp_post_reloads", "Configuration reloads by outcome",
                               ["outcome"], registry=r)
        self.refusals = Counter("xmpp_post_refusals", "Messages the XMPP server refused "
                                "(message errors), by condition, and whether the refusal "
                                "came in time for the answer (answer) or after it (late)",
                                ["condition", "when"], registry=r)
        self.uploads = Counter("xmpp_post_uploads", "Files of requests (XEP-0363 uploads), "
                               "by outcome: uploaded, or the error code that stopped them",
                               ["outcome"], registry=r)
        self.upload_bytes = Counter("xmpp_post_upload_bytes", "Bytes of those files, by "
                                    "outcome (of a file refused while it arrived: what had "
                                    "arrived)", ["outcome"], registry=r)
        self.bot_deliveries = Counter(
            "xmpp_post_bot_deliveries", "Messages to bots, by bot and outcome: delivered "
            "(2xx), answered (by the alert actions), rejected (4xx), expired (retried for "
            "retry_for)", ["bot", "outcome"], registry=r)
        self.bot_skipped = Counter("xmpp_post_bot_skipped", "Messages to bots that were not "
                                   "delivered, by bot and reason (encrypted: OMEMO, the "
                                   "bot has it off; undecryptable: OMEMO it cannot read; "
                                   "queue_full; handled_elsewhere: by another instance)",
                                   ["bot", "reason"], registry=r)
        self.bot_replies_failed = Counter(
            "xmpp_post_bot_replies_failed", "Replies of bots that were not sent, by bot and "
            "reason (omemo: the reply to an encrypted message could not be encrypted, and "
            "is not sent in clear; xmpp: any other failure)", ["bot", "reason"], registry=r)
        self._bot_waiting = Gauge("xmpp_post_bot_queue_length", "Messages waiting for a "
                                  "bot's webhook", ["bot"], registry=r)
        self._bot_oldest = Gauge("xmpp_post_bot_oldest_waiting_seconds", "Seconds the "
                                 "oldest message waiting for a bot's webhook has waited "
                                 "(0 when none waits)", ["bot"], registry=r)
        self._request_counters: dict[tuple[str, str, int], Counter] = {}

    def count_request(self, route: str, method: str, status: int) -> None:
        """One HTTP request. The labelled counters are kept by their labels here, so a
        request costs a dictionary lookup, not prometheus_client's label handling."""
        key = (route, method, status)
        counter = self._request_counters.get(key)
        if counter is None:
            counter = self._request_counters[key] = self.requests.labels(route, method,
                                                                         str(status))
        counter.inc()

    def count_credential(self, via: str | None, status: int) -> None:
        """Count a request by the token or webhook it came with (``via``: ``token:NAME``,
        ``webhook:NAME``, ``token`` or ``webhook_url`` for an unknown one); names only,
        never secrets."""
        if via is None or via == "basic":
            return
        if via == "token":
            self.unknown_tokens.inc()
            return
        if via == "webhook_url":
            self.unknown_webhook_urls.inc()
            return
        kind, _, name = via.partition(":")
        self.credential_requests.labels(kind, name).inc()
        if not 200 <= status < 300:
            self.credential_failures.labels(kind, name).inc()

    def count_upload(self, outcome: str, size: int) -> None:
        """One file: ``uploaded``, or the code of the error that stopped it."""
        self.uploads.labels(outcome).inc()
        self.upload_bytes.labels(outcome).inc(size)

    def count_refusal(self, condition: str, late: bool) -> None:
        self.refusals.labels(condition, "late" if late else "answer").inc()

    def track_open_sessions(self, count: Callable[[], float]) -> None:
        self.sessions_open.set_function(count)

    def track_bot(self, bot: str, waiting: Callable[[], float],
                  oldest: Callable[[], float]) -> None:
        """A bot's queue: its length and its oldest item's age (read at each scrape)."""
        self._bot_waiting.labels(bot).set_function(waiting)
        self._bot_oldest.labels(bot).set_function(oldest)

    def track_state(self, size: Callable[[], float], rows: Mapping[str, int]) -> None:
        """The state database's size (read at each scrape) and its rows per kind; only a
        gateway with a state directory has these."""
        r = self.registry
        state_bytes = Gauge("xmpp_post_state_bytes", "Bytes of the state database "
                            "(--state-dir) and its write-ahead log on disk", registry=r)
        state_bytes.set_function(size)
        state_rows = Gauge("xmpp_post_state_rows", "Rows in the state database by kind "
                           "(idempotency, kv, queue), as of its last upkeep", ["kind"],
                           registry=r)
        for kind in rows:
            state_rows.labels(kind).set_function(partial(rows.__getitem__, kind))

    def render(self) -> bytes:
        return generate_latest(self.registry)
