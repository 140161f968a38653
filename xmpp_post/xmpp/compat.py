"""Every use of slixmpp's private API, in one module, checked when the gateway starts.

slixmpp's public API (``ClientXMPP``, plugins, handlers, events, filters) does not reach
what a sending-only gateway tunes. What xmpp-post needs beyond it is here and nowhere
else, written for slixmpp ``WRITTEN_FOR``; ``pyproject.toml`` pins the range tested.
``install()`` runs ``check()`` once, when the gateway starts serving and before any
connection (``XmppRelay.start``; the first ``ClientBase`` otherwise), then patches the
two process-wide functions. A name that is missing or has another shape raises
``SlixmppIncompatible``, naming it, the slixmpp installed and the one this was written for.

Each patch says what it buys, with the figure and how it was measured, or that it
was not measured. Figures from the project's history name the commit whose README
gave them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import importlib
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any

import slixmpp
from slixmpp import ClientXMPP
from slixmpp.features.feature_mechanisms.stanza import Challenge
from slixmpp.util.sasl import SASLMutualAuthFailed
from slixmpp.util.sasl.mechanisms import SCRAM
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

from xmpp_post.xmpp.salted import LoginMemo
from xmpp_post.xmpp.stanzas import entities

log = logging.getLogger(__name__)

WRITTEN_FOR = "1.17.0"
ACK_TAG = "{urn:xmpp:sm:3}a"
CHALLENGE_HANDLER = "SASL Challenge"  # the name feature_mechanisms registers it under
SM_ACK_HANDLER = "Stream Management Ack"  # the name xep_0198 registers it under
# What ClientBase and client.Client add to slixmpp's client: a slixmpp that defines any
# of them would have it silently replaced by ours.
ADDED_NAMES = ("on_ack", "offload_scram", "compact_parser", "take_over_acks",
               "stop_send_loop", "_sasl_challenge", "outbox", "flush", "before_flush",
               "_socket", "UNUSED_PLUGINS", "salted_memo")

# The module, not the function of the same name that slixmpp.xmlstream exports.
TOSTRING: Any = importlib.import_module("slixmpp.xmlstream.tostring")
# slixmpp's own functions, kept before any patch (check() looks at these, not ours).
SLIXMPP_ESCAPE: Callable[[str, bool], str] | None = getattr(TOSTRING, "escape", None)
SLIXMPP_HI: Callable[..., bytes] | None = getattr(SCRAM, "Hi", None)

_installed = False


class SlixmppIncompatible(RuntimeError):
    """The installed slixmpp lacks a private name xmpp-post uses, or it changed shape."""

    def __init__(self, name: str, problem: str) -> None:
        installed = getattr(slixmpp, "__version__", "(unknown version)")
        super().__init__(
            f"slixmpp {installed} is not supported: {name} {problem}. xmpp-post uses that "
            f"part of slixmpp's private API as written for slixmpp {WRITTEN_FOR}; install "
            f"the version range pyproject.toml pins")
        self.name = name


# the process-wide patches ---------------------------------------------------------------


def scram_hi(self: Any, text: bytes, salt: bytes, iterations: int) -> bytes:
    """``SCRAM.Hi``, process-wide. SCRAM's Hi() (RFC 5802, 2.2) is PBKDF2: by hashlib in
    C instead of slixmpp's HMAC loop in Python; when the client already computed it off
    the event loop (``ClientBase._sasl_challenge``), that result.

    Buys, at 10,000 iterations: 36 -> 2.6 ms of CPU per login with SHA-1, 23 -> 2.4 ms
    with SHA-256 (``timeit`` of one call of each, 5 rounds, this 2-core VM)."""
    ready = getattr(self, "xmpp_post_salted", None)
    if ready is not None and ready[0] == (bytes(text), salt, iterations):
        return bytes(ready[1])
    return hashlib.pbkdf2_hmac(self.hash().name, bytes(text), salt, iterations)


def escape(text: str, use_cdata: bool = False) -> str:
    """``slixmpp.xmlstream.tostring.escape``, process-wide: slixmpp's text escaping by
    regular expression instead of one generator step per character (the same output:
    ``tests/unit/test_compose.py``).

    Buys: 1.0 -> 0.13 µs for 11 characters, 43 -> 2.8 µs for 1,000 (``timeit``); about
    0.3 ms of a login by profile, not visible in a whole login's CPU (README, dcad47b).
    """
    if use_cdata:
        assert SLIXMPP_ESCAPE is not None  # check() made sure
        return SLIXMPP_ESCAPE(text, use_cdata)
    return entities(text)


def install() -> None:
    """Check slixmpp (once), then patch SCRAM's Hi() and the text escaping process-wide."""
    global _installed
    if _installed:
        return
    check()
    SCRAM.Hi = scram_hi
    TOSTRING.escape = escape
    _installed = True


@contextlib.contextmanager
def slixmpp_escaping() -> Iterator[None]:
    """slixmpp's own text escaping while the block runs (to compare against it)."""
    patched = TOSTRING.escape
    TOSTRING.escape = SLIXMPP_ESCAPE
    try:
        yield
    finally:
        TOSTRING.escape = patched


# the client's private overrides and accesses --------------------------------------------


class ClientBase(ClientXMPP):  # type: ignore[misc]
    """slixmpp's client with every private method the gateway overrides or calls; the
    public tuning is ``client.Client``'s. Once ``on_ack`` is set, the server's XEP-0198
    ``<a h=…/>`` answers go to it directly, without a stanza object or handler dispatch."""

    on_ack: Callable[[str | None], None] | None = None
    salted_memo: LoginMemo | None = None  # SCRAM's SaltedPassword of a returning sender

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        install()
        super().__init__(*args, **kwargs)

    def _handle_session_bind(self, jid: Any) -> None:
        """No roster is kept: the gateway never reads or changes one.

        Buys, with ``compact_parser`` and the unused stream-feature plugins left out
        (``client.Client``): 104 -> 94-97 KiB per idle pooled session (``python -m
        bench.run``, its memory rows; commit a77cbf1); the share of each not measured."""

    def _spawn_event(self, xml: Any) -> None:
        """The server's ``<a h=…/>`` goes to ``on_ack`` without a stanza object, filters
        or handler matching.

        Buys, with ``take_over_acks``, ``acks.AckTracker``'s one timer per stream and
        the stanza template of ``compose``: the XMPP side from 96-106 to 35-37 µs of CPU
        per message (the relay driven by 8 concurrent senders, 3 rounds of 4 s; README,
        dcad47b); the share of each part not measured."""
        on_ack = self.on_ack
        if on_ack is not None and xml.tag == ACK_TAG:
            on_ack(xml.get("h"))
            return
        super()._spawn_event(xml)

    def offload_scram(self) -> None:
        """Answer SASL challenges (slixmpp's ``"SASL Challenge"`` handler, its
        ``FeatureMechanisms._handle_challenge``, the ``mech``'s ``step``, ``parse``,
        ``credentials`` and ``hash``) from a coroutine that first finds SCRAM's
        SaltedPassword: in ``salted_memo`` for a returning sender (``salted``), else by
        PBKDF2 in a thread (hashlib releases the GIL), logins in parallel.

        Buys: a login no longer holds the event loop for its PBKDF2 (the ~2.5 ms of
        ``scram_hi``); a returning sender's login skips it (figures in
        ``docs/performance.md``, *Cold and returning senders*)."""
        self.remove_handler(CHALLENGE_HANDLER)
        self.register_handler(CoroutineCallback(
            CHALLENGE_HANDLER, MatchXPath(Challenge.tag_name()), self._sasl_challenge))

    async def _sasl_challenge(self, challenge: Any) -> None:
        mechanisms = self.plugin["feature_mechanisms"]
        mech = mechanisms.mech
        if isinstance(mech, SCRAM) and mech.step == 1:
            with contextlib.suppress(Exception):  # malformed: slixmpp's handler says so
                data = mech.parse(challenge["value"])
                salt, rounds = base64.b64decode(data[b"s"]), int(data[b"i"])
                text = bytes(mech.credentials["password"])
                params = (mech.hash().name, salt, rounds)
                memo = self.salted_memo
                salted = memo.recall(params) if memo is not None else None
                if salted is None:
                    salted = await asyncio.to_thread(hashlib.pbkdf2_hmac, params[0],
                                                     text, salt, rounds)
                    if memo is not None:
                        memo.computed(params, salted)
                mech.xmpp_post_salted = ((text, salt, rounds), salted)
        mechanisms._handle_challenge(challenge)

    def compact_parser(self) -> None:
        """Swap the stream's XML parser for a fresh one positioned inside the stream.

        The parser keeps buffers as large as the largest read of the login (TLS and SASL
        exchanges, stream features); an idle pooled session does not need them. Called
        once the session is open, when the server owes us nothing mid-stanza. Uses
        ``init_parser``, ``parser``, ``xml_root`` and ``xml_depth``; buys part of the
        memory figure of ``_handle_session_bind``."""
        old_root: Any = getattr(self, "xml_root", None)
        self.init_parser()
        assert self.parser is not None
        self.parser.feed(f"<stream:stream xmlns='{self.default_ns}' "
                         f"xmlns:stream='{self.stream_ns}'>")
        fresh_root: Any = None
        for _event, root in self.parser.read_events():
            fresh_root = root
        self.xml_root = fresh_root if fresh_root is not None else old_root
        self.xml_depth = 1

    def take_over_acks(self, count_outgoing: Callable[[Any], Any]) -> int:
        """Stop the XEP-0198 plugin's counting of what is sent and of the server's
        answers (it still enabled stream management and answers the server's ``<r/>``);
        ``count_outgoing`` counts from now on. Returns the plugin's count so far. Uses
        the plugin's ``_handle_outgoing``, ``seq``, ``unacked_queue`` and ``"Stream
        Management Ack"`` handler; buys part of the figure of ``_spawn_event`` (no
        stanza object kept per stanza sent, no handler per ``<a/>``)."""
        plugin = self.plugin["xep_0198"]
        self.del_filter("out_sync", plugin._handle_outgoing)
        self.remove_handler(SM_ACK_HANDLER)
        plugin.unacked_queue.clear()
        self.add_filter("out_sync", count_outgoing)
        return int(plugin.seq)

    def stop_send_loop(self) -> None:
        """Cancel slixmpp's send task (``_run_out_filters``): a session is never
        reconnected, so nothing may outlive its stream. Buys no speed (a task left
        behind per closed session, fixed in c4a1d7a); not measured."""
        sender = self._run_out_filters
        if sender is not None and not sender.done():
            sender.cancel()


# the check ------------------------------------------------------------------------------


def check() -> None:
    """Raise ``SlixmppIncompatible`` unless every private name used here exists with the
    shape this module expects. Builds one client (never connected) to look inside."""
    _check_scram()
    _check_escape()
    _need_function(ClientXMPP, "_spawn_event", "ClientXMPP._spawn_event", ("self", "xml"))
    _need_function(ClientXMPP, "_handle_session_bind", "ClientXMPP._handle_session_bind",
                   ("self", "jid"))
    _need_function(ClientXMPP, "init_parser", "ClientXMPP.init_parser", ("self",))
    mechanisms_class = _class("slixmpp.features.feature_mechanisms", "FeatureMechanisms")
    _need_function(mechanisms_class, "_handle_challenge",
                   "FeatureMechanisms._handle_challenge", ("self", "stanza"))
    sm_class = _class("slixmpp.plugins.xep_0198", "XEP_0198")
    _need_function(sm_class, "_handle_outgoing", "XEP_0198._handle_outgoing",
                   ("self", "stanza"))
    try:
        probe = ClientXMPP("compat-check@example.invalid", "")
        probe.register_plugin("xep_0198")
        mechanisms, plugin = probe.plugin["feature_mechanisms"], probe.plugin["xep_0198"]
    except Exception as exc:
        raise SlixmppIncompatible("ClientXMPP with the xep_0198 plugin",
                                  f"could not be built ({exc!r})") from None
    for name in ("_run_out_filters", "parser", "xml_root", "xml_depth"):
        if not hasattr(probe, name):
            raise SlixmppIncompatible(f"ClientXMPP().{name}", "is missing")
    for name in ADDED_NAMES:
        if hasattr(probe, name):
            raise SlixmppIncompatible(f"ClientXMPP.{name}", "now exists in slixmpp, and "
                                      "xmpp-post's own of that name would replace it")
    if not hasattr(mechanisms, "mech"):
        raise SlixmppIncompatible("FeatureMechanisms.mech", "is missing")
    if not callable(getattr(getattr(plugin, "unacked_queue", None), "clear", None)):
        raise SlixmppIncompatible("XEP_0198.unacked_queue", "is missing or not a queue")
    if not isinstance(getattr(plugin, "seq", None), int):
        raise SlixmppIncompatible("XEP_0198.seq", "is missing or not a count")
    try:
        probe.del_filter("out_sync", plugin._handle_outgoing)
    except (ValueError, KeyError):
        raise SlixmppIncompatible("XEP_0198._handle_outgoing",
                                  "is not an out_sync filter") from None
    _need_handler(probe, CHALLENGE_HANDLER)
    _need_handler(probe, SM_ACK_HANDLER)


def _class(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise SlixmppIncompatible(f"{module}.{name}", "is missing") from None


def _check_scram() -> None:
    if SLIXMPP_HI is None:
        raise SlixmppIncompatible("SCRAM.Hi", "is missing")
    _need_function(SCRAM, "Hi", "SCRAM.Hi", ("self", "text", "salt", "iterations"),
                   SLIXMPP_HI)
    try:
        mech = SCRAM("SCRAM-SHA-1", {"username": b"u", "password": b"p", "authzid": b"",
                                     "channel_binding": b""},
                     {"encrypted": True, "unencrypted_scram": False,
                      "binding_proposed": False, "tls_version": None})
        name = mech.hash().name
        step, password = mech.step, mech.credentials["password"]
        parsed = mech.parse(b"r=n,s=c2FsdA==,i=2")
    except Exception as exc:
        raise SlixmppIncompatible("SCRAM (step, credentials, hash, parse)",
                                  f"no longer works as expected ({exc!r})") from None
    if hasattr(mech, "xmpp_post_salted"):
        raise SlixmppIncompatible("SCRAM.xmpp_post_salted", "now exists in slixmpp")
    if step != 0 or password != b"p" or parsed.get(b"s") != b"c2FsdA==":
        raise SlixmppIncompatible("SCRAM (step, credentials, parse)", "changed meaning")
    if SLIXMPP_HI(mech, b"p", b"salt", 2) != hashlib.pbkdf2_hmac(name, b"p", b"salt", 2):
        raise SlixmppIncompatible("SCRAM.Hi", "no longer computes PBKDF2")
    _check_scram_exchange()


def _check_scram_exchange() -> None:
    """A SaltedPassword given in place of Hi() (``scram_hi``, ``salted``) must be all the
    client's proof comes from, and the server's signature must be checked (slixmpp's
    ``process``): one SCRAM-SHA-1 exchange against RFC 5802's formulas, done here."""
    salted = hashlib.pbkdf2_hmac("sha1", b"p", b"salt", 2)

    def hmac_sha1(key: bytes, text: bytes) -> bytes:
        return hmac.digest(key, text, "sha1")

    try:
        mech = SCRAM("SCRAM-SHA-1", {"username": b"u", "password": b"not-this",
                                     "authzid": b"", "channel_binding": b""},
                     {"encrypted": True, "unencrypted_scram": False,
                      "binding_proposed": False, "tls_version": None})
        mech.Hi = lambda text, salt, iterations: salted  # on the instance only
        first = mech.process()
        bare = first.split(b",", 2)[2]
        server_first = b"r=" + bare.split(b"r=", 1)[1] + b"srv,s=c2FsdA==,i=2"
        final = mech.process(server_first)
        without_proof, _, proof = final.rpartition(b",p=")
        auth = bare + b"," + server_first + b"," + without_proof
        client_key = hmac_sha1(salted, b"Client Key")
        signature = hmac_sha1(hashlib.sha1(client_key).digest(), auth)
        expected = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        verifier = hmac_sha1(hmac_sha1(salted, b"Server Key"), auth)
        proof_ok = base64.b64decode(proof) == expected
        forged = _refuses(mech, b"v=" + base64.b64encode(bytes(20)))
        genuine = mech.process(b"v=" + base64.b64encode(verifier)) == b""
    except Exception as exc:
        raise SlixmppIncompatible("SCRAM.process", f"no longer works as expected "
                                  f"({exc!r})") from None
    if not proof_ok:
        raise SlixmppIncompatible("SCRAM.process", "no longer derives the client's proof "
                                  "from Hi() alone")
    if not (forged and genuine):
        raise SlixmppIncompatible("SCRAM.process", "no longer checks the server's signature")


def _refuses(mech: Any, server_final: bytes) -> bool:
    try:
        mech.process(server_final)
    except SASLMutualAuthFailed:
        return True
    return False


def _check_escape() -> None:
    if SLIXMPP_ESCAPE is None:
        raise SlixmppIncompatible("slixmpp.xmlstream.tostring.escape", "is missing")
    _need_function(TOSTRING, "escape", "slixmpp.xmlstream.tostring.escape",
                   ("text", "use_cdata"), SLIXMPP_ESCAPE)
    sample = "a<b>&\"c\"'d'\n"
    if SLIXMPP_ESCAPE(sample, False) != entities(sample):
        raise SlixmppIncompatible("slixmpp.xmlstream.tostring.escape", "escapes otherwise")


def _need_function(owner: Any, attr: str, label: str, params: tuple[str, ...],
                   value: Any = None) -> None:
    function = value if value is not None else getattr(owner, attr, None)
    if not callable(function):
        raise SlixmppIncompatible(label, "is missing")
    try:
        names = tuple(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        raise SlixmppIncompatible(label, "has no signature to check") from None
    if names != params:
        raise SlixmppIncompatible(label, f"takes ({', '.join(names)}), not the expected "
                                         f"({', '.join(params)})")


def _need_handler(client: Any, name: str) -> None:
    if not client.remove_handler(name):  # the probe is thrown away: removing is harmless
        raise SlixmppIncompatible(f"the {name!r} stream handler", "is not registered")
