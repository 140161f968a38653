"""The XMPP side built from the configuration (wiring, beside ``service``): the sessions'
options and the relay with its pool, upload and OMEMO devices (``omemo_keys``: where
``state_setup`` says their keys live, or why there are none)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from xmpp_post.config import Config
from xmpp_post.metrics import Metrics
from xmpp_post.model import Sender
from xmpp_post.state.lasting import KeyValue
from xmpp_post.uploader import HttpsUploader
from xmpp_post.xmpp.client import tls_context
from xmpp_post.xmpp.directory import ServiceDirectory
from xmpp_post.xmpp.omemo_devices import OmemoDevices
from xmpp_post.xmpp.pool import SessionPool
from xmpp_post.xmpp.salted import SaltedPasswords
from xmpp_post.xmpp.session import SessionOptions, XmppSession
from xmpp_post.xmpp.xmpp_relay import XmppRelay


def session_options(config: Config) -> SessionOptions:
    server = (config.xmpp_server.host, config.xmpp_server.port) if config.xmpp_server else None
    return SessionOptions(
        server=server, direct_tls=config.direct_tls, ca_file=config.ca_file,
        insecure_skip_tls_verify=config.insecure_skip_tls_verify,
        connect_timeout=config.connect_timeout, ack_timeout=config.ack_timeout,
        receipt_timeout=config.receipt_timeout, bounce_wait=config.bounce_wait,
        retry_after=config.retry_after, max_stanza_size=config.max_stanza_size,
    )


def xmpp_relay(config: Config, metrics: Metrics | None = None,
               clock: Callable[[], float] = time.monotonic,
               omemo_keys: tuple[KeyValue | None, str] = (None, "")) -> XmppRelay:
    """The real relay; ``clock`` times idle sessions and rooms (tests inject one);
    ``omemo_keys``: where OMEMO keeps its keys, or why it cannot (``state_setup``)."""
    keys, missing = omemo_keys
    options = replace(session_options(config), omemo_missing=missing or "no OMEMO keys")
    omemo = (OmemoDevices(keys, timeout=config.ack_timeout, clock=clock)
             if keys is not None else None)
    directory = ServiceDirectory()  # which domains are group chat services, for all senders

    salted = SaltedPasswords(config.scram_cache)  # SCRAM's SaltedPassword per sender

    def factory(sender: Sender, digest: bytes) -> XmppSession:
        return XmppSession(sender, options, directory, metrics, clock=clock,
                           salted=salted.login(sender.jid, digest), omemo=omemo)

    pool = SessionPool(factory, idle_timeout=config.idle_timeout,
                       max_sessions=config.max_sessions, retry_after=config.retry_after,
                       max_opening=config.max_concurrent_opens, metrics=metrics,
                       clock=clock)
    if metrics is not None:
        metrics.track_open_sessions(lambda: pool.open_sessions)
    # The HTTPS PUT of file uploads, trusting what the XMPP sessions trust.
    uploader = HttpsUploader(tls_context(config.ca_file, config.insecure_skip_tls_verify),
                             connect_timeout=config.connect_timeout,
                             read_timeout=config.upload_timeout)
    return XmppRelay(pool, request_timeout=config.request_timeout,
                     retry_after=config.retry_after, max_stanza_size=config.max_stanza_size,
                     directory=directory, uploader=uploader,
                     upload_timeout=config.upload_timeout, salted=salted, omemo=omemo)
