"""JID parsing and validation (RFC 7622's address format, with the stringprep profiles
XMPP servers still apply): the standard library and ``idna``, no XMPP library.

Every JID the gateway handles goes through here, on either side of the seam, so the
HTTP side validates recipients and accounts without loading slixmpp. The rules are the
ones slixmpp's own ``JID`` applies (a test compares both on generated addresses):

* the localpart passes nodeprep (case folded; no space, ``" & ' / : < > @``);
* the domain passes nameprep and IDNA's checks (UTS #46, hyphens, bidi), and holds none
  of the characters a URL's host may not (``# % : < > ? [ \\ ] ^ |``, spaces, controls);
  ``[IPv6]`` literals are kept as written;
* the resourcepart passes resourceprep (case kept);
* each part is 1 to 1023 bytes.

The normalizing functions are pure, so their recent answers are kept (a few thousand,
least recently used first out): a busy sender's JIDs are parsed once, not per request.
"""

from __future__ import annotations

import ipaddress
import stringprep
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import idna

RECENT = 4096  # answers kept per function
MAX_PART = 1023  # bytes of UTF-8 in each part

_ucd = unicodedata.ucd_3_2_0  # stringprep (RFC 3454) is defined on Unicode 3.2
_NODE_EXCLUDED = frozenset(" \"&'/:<>@")
# What a URL's host may not hold (besides controls and spaces), and so neither a domain.
_HOST_EXCLUDED = frozenset("#%/:<>?@[\\]^|\x7f")
_JOINERS = frozenset("\u200c\u200d")  # refused in a domain, not mapped to nothing
_DOTS = str.maketrans("\u3002\uff0e\uff61", "...")  # full stops that separate labels
_SYMBOLS_AS_LETTER = {ord(c): "a" for c in "!\"$&'()*+,;=_`{}~"}
_COMMON_PROHIBITED: tuple[Callable[[str], bool], ...] = (
    stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22,
    stringprep.in_table_c3, stringprep.in_table_c4, stringprep.in_table_c5,
    stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
    stringprep.in_table_c9)


class JidError(ValueError):
    """The text is not a valid JID of the expected shape."""


def _prep(text: str, *, fold: bool, prohibited: tuple[Callable[[str], bool], ...],
          excluded: frozenset[str] = frozenset()) -> str | None:
    """One stringprep profile (RFC 3454 steps 1-4) over ``text``; None when it fails."""
    mapped = "".join(stringprep.map_table_b2(c) if fold else c
                     for c in text if not stringprep.in_table_b1(c))
    prepared = _ucd.normalize("NFKC", mapped)
    for char in prepared:
        if (char in excluded or stringprep.in_table_a1(char)
                or any(table(char) for table in prohibited)):
            return None
    rtl = [stringprep.in_table_d1(c) for c in prepared]
    # right-to-left text: no left-to-right letter, and right-to-left at both ends
    if any(rtl) and (any(stringprep.in_table_d2(c) for c in prepared)
                     or not (rtl[0] and rtl[-1])):
        return None
    return prepared


def _nodeprep(text: str) -> str | None:
    return _prep(text, fold=True, prohibited=(stringprep.in_table_c11, *_COMMON_PROHIBITED),
                 excluded=_NODE_EXCLUDED)


def _resourceprep(text: str) -> str | None:
    return _prep(text, fold=False, prohibited=_COMMON_PROHIBITED)


def _nameprep(text: str) -> str | None:
    return _prep(text, fold=True, prohibited=_COMMON_PROHIBITED)


def _sized(part: str, what: str) -> str:
    if not part:
        raise JidError(f"the {what} is empty")
    if len(part.encode()) > MAX_PART:
        raise JidError(f"the {what} is longer than {MAX_PART} bytes")
    return part


def _domainpart(text: str) -> str:
    if text.startswith("[") and text.endswith("]"):
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise JidError("the domain is not a valid IPv6 literal") from None
        return text
    domain = None if _JOINERS & set(text) else _nameprep(text)
    if domain is None or any(c in _HOST_EXCLUDED or c <= " " for c in domain):
        raise JidError("the domain is not a valid domain name (nameprep)")
    # The labels as written and as prepared are both checked; a trailing dot ends the
    # domain only as written ("example.org."), and goes (RFC 7622, 3.2).
    written = "".join(c for c in text if not stringprep.in_table_b1(c))
    for name in (written, domain):
        labels = name.translate(_DOTS).split(".")
        if labels[-1] == "" and len(labels) > 1 and text.endswith("."):
            labels.pop()
        if not all(_valid_label(label) for label in labels):
            raise JidError("the domain is not a valid domain name (IDNA)")
    return _sized(domain.removesuffix("."), "domain")


def _valid_label(label: str) -> bool:
    """An ASCII label: 1 to 63 characters, no hyphen at either end nor in the third and
    fourth place but for a valid ``xn--`` label; any other: a valid IDNA 2008 label."""
    if not label.isascii():  # ASCII symbols count as letters, as IDNA without STD3 rules
        try:
            idna.encode(label.translate(_SYMBOLS_AS_LETTER), uts46=True, std3_rules=False,
                        transitional=False)
        except idna.IDNAError:
            return False
        return True
    if not 0 < len(label) <= 63 or label[0] == "-" or label[-1] == "-":
        return False
    if label[2:4] != "--":
        return True
    try:
        return label[:4] == "xn--" and idna.encode(idna.decode(label)).decode() == label
    except idna.IDNAError:
        return False


def _parse(text: str) -> tuple[str, str, str]:
    """(localpart, domainpart, resourcepart) of ``text``, each normalized; a part
    absent from ``text`` is ''."""
    bare, slash, resource = text.partition("/")
    node, at, domain = bare.rpartition("@")
    if "@" in node:
        raise JidError("the address has a second @ before its resource")
    if at:
        prepared = _nodeprep(node) if node else ""
        if prepared is None:
            raise JidError("the localpart is not valid (nodeprep)")
        node = _sized(prepared, "localpart")
    if slash:
        prepared = _resourceprep(resource) if resource else ""
        if prepared is None:
            raise JidError("the resourcepart is not valid (resourceprep)")
        resource = _sized(prepared, "resourcepart")
    return node, _domainpart(domain), resource


def _bare(node: str, domain: str) -> str:
    return f"{node}@{domain}" if node else domain


@lru_cache(maxsize=RECENT)
def normalize_domain(domain: str) -> str:
    """The canonical (lower-cased, IDNA-checked) form of a domain; JidError if invalid."""
    if "@" in domain or "/" in domain:
        raise JidError("a domain has no '@' or '/'")
    return _domainpart(domain)


def is_valid_domain(domain: str) -> bool:
    try:
        normalize_domain(domain)
    except JidError:
        return False
    return True


@lru_cache(maxsize=RECENT)
def account(text: str, default_domain: str) -> str:
    """The bare JID of an account named ``user@domain`` or just ``user``."""
    if "@" not in text:
        text = f"{text}@{default_domain}"
    node, domain, _ = _parse(text)
    if not node or "/" in text:
        raise JidError("expected user@domain")
    return _bare(node, domain)


def domain_of(bare_jid: str) -> str:
    return bare_jid.rpartition("@")[2]


def local_of(bare_jid: str) -> str:
    return bare_jid.partition("@")[0]


def bare_of(jid_text: str) -> str:
    return jid_text.partition("/")[0]


@lru_cache(maxsize=RECENT)
def recipient(text: str, sender_domain: str) -> str:
    """A recipient as a normalized JID: full, bare, or a localpart on the sender's domain."""
    text = text.strip()
    head, slash, resource = text.partition("/")
    if "@" not in head:
        text = f"{head}@{sender_domain}{slash}{resource}"
    node, domain, resource = _parse(text)
    if not node:
        raise JidError("a recipient needs a user part")
    bare = _bare(node, domain)
    return f"{bare}/{resource}" if resource else bare


@lru_cache(maxsize=RECENT)
def resourcepart(text: str) -> str:
    """``text`` as a valid, normalized JID resourcepart (a MUC nickname, for instance)."""
    if not text or text != text.strip():
        raise JidError("it is empty or starts or ends with a space")
    return _parse(f"nick@example.invalid/{text}")[2]


def is_bare(jid_text: str) -> bool:
    return "/" not in jid_text
