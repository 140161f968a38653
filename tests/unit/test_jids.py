"""``jids`` validates and normalizes addresses as slixmpp's ``JID`` does, without it:
compared on generated addresses (the XMPP side may import slixmpp; ``jids`` may not)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slixmpp.jid import JID, InvalidJID

from tests.helpers import examples
from xmpp_post import jids

# What real addresses are made of: letters of several scripts, digits, case, and the
# separators; plus characters that stringprep maps, folds or removes.
REALISTIC = st.sampled_from([*"abcxyzABCXYZ0129-._",
    "ü", "Ö", "ß", "é", "ç", "ñ", "ø", "Ω", "ς", "д", "Ж", "例", "テ", "\u00ad", "\u200b",
    "ﬀ", "Ⅸ", "Ⓐ", "ǅ", "K"])
ANY = st.sampled_from([*"abcXYZ09-_.@/ !#%&'\"<>:[]\\^|~`$", "\u00ad", "\u200b", "\u00df",
                       "\u03c2", "\u0627", "\u0661", "\u0301", "\ufb00", "\u3002", "\uff0e",
                       "\u00a0", "\u3000", "\u2028", "\u0378", "\ue000", "\ufffd", "\x7f",
                       "\x01", "\t", "\u01c5", "\u212a", "\u00fc", "\u4f8b", "\u200c",
                       "\u200d", "xn--", "--", "\U000e0001", "\u05d0", "\u2160"])


def slixmpp_says(text: str) -> str | None:
    """slixmpp's normalized address (its domain without a trailing dot), or None."""
    try:
        jid = JID(text)
    except InvalidJID:
        return None
    node = f"{jid.node}@" if jid.node else ""
    resource = f"/{jid.resource}" if jid.resource else ""
    return node + str(jid.domain).removesuffix(".") + resource


def ours(text: str) -> str | None:
    try:
        node, domain, resource = jids._parse(text)
    except jids.JidError:
        return None
    return (f"{node}@" if node else "") + domain + (f"/{resource}" if resource else "")


def address(part: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    text = st.lists(part, min_size=1, max_size=8).map("".join)
    return st.tuples(text, text, st.one_of(st.just(""), text)).map(
        lambda t: f"{t[0]}@{t[1]}" + (f"/{t[2]}" if t[2] else ""))


@settings(max_examples=examples(300), deadline=None)
@given(address(REALISTIC))
def test_realistic_addresses_are_read_as_slixmpp_reads_them(text: str) -> None:
    assert ours(text) == slixmpp_says(text)


@settings(max_examples=examples(500), deadline=None)
@given(st.lists(ANY, min_size=1, max_size=9).map("".join))
def test_never_more_lenient_than_slixmpp(text: str) -> None:
    """On any text: what slixmpp refuses is refused, and what both accept reads the same
    (a few exotic domains slixmpp takes, mixing right-to-left text and symbols, are
    refused here)."""
    theirs, mine = slixmpp_says(text), ours(text)
    if mine is not None:
        assert theirs is not None, text
        assert mine == theirs or f"{mine}/" in theirs  # slixmpp's 'a./' quirk


@pytest.mark.parametrize(("text", "expected"), [
    ("Alice@Example.ORG", "alice@example.org"),
    ("alice@example.org.", "alice@example.org"),
    ("ä@ÄÖ.de/Res", "ä@äö.de/Res"),
    ("a@xn--mnchen-3ya.de", "a@xn--mnchen-3ya.de"),
    ("a@[::1]", "a@[::1]"),
    ("ﬀ@b/ﬀ", "ff@b/ff"),
])
def test_normal_forms(text: str, expected: str) -> None:
    assert jids.recipient(text, "example.org") == expected


@pytest.mark.parametrize("text", ["a b@c", "@b", "a@", "a@b/", "a@b@c", "a@-b.c", "a@b..c",
                                  "a@b:5222", "a@[::1", "a@b\u200cc", "a@" + "x" * 64])
def test_invalid_addresses(text: str) -> None:
    with pytest.raises(jids.JidError):
        jids.recipient(text, "example.org")


def test_domains_and_nicknames() -> None:
    assert jids.normalize_domain("Example.ORG.") == "example.org"
    assert not jids.is_valid_domain("exa mple.org")
    assert jids.resourcepart("Bob \u00a0Smith") == "Bob  Smith"
    with pytest.raises(jids.JidError):
        jids.resourcepart(" bob")
