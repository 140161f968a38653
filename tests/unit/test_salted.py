"""SCRAM's SaltedPassword kept for returning senders (``xmpp.salted``): bounded, dropped
when the server changes salt, iterations or hash, kept only once a login succeeded, keyed
by the password's digest (so another password finds nothing), never shown by a repr."""

from __future__ import annotations

import hashlib

from xmpp_post.xmpp.salted import SaltedPasswords

PARAMS = ("sha1", b"salt-1", 10000)
RIGHT, WRONG = hashlib.sha256(b"right").digest(), hashlib.sha256(b"wrong").digest()


def remember(cache: SaltedPasswords, jid: str, digest: bytes = RIGHT,
             params: tuple[str, bytes, int] = PARAMS, value: bytes = b"salted") -> None:
    memo = cache.login(jid, digest)
    assert memo.recall(params) is None
    memo.computed(params, value)
    memo.confirmed()


def test_keeps_at_most_its_capacity_least_recently_used_first_out() -> None:
    cache = SaltedPasswords(2)
    remember(cache, "a@x", value=b"A")
    remember(cache, "b@x", value=b"B")
    assert cache.login("a@x", RIGHT).recall(PARAMS) == b"A"  # a is now the most recent
    remember(cache, "c@x", value=b"C")
    assert len(cache) == 2
    assert cache.login("b@x", RIGHT).recall(PARAMS) is None
    assert cache.login("a@x", RIGHT).recall(PARAMS) == b"A"
    assert cache.login("c@x", RIGHT).recall(PARAMS) == b"C"


def test_capacity_zero_keeps_nothing() -> None:
    cache = SaltedPasswords(0)
    remember(cache, "a@x")
    assert len(cache) == 0


def test_another_salt_iteration_count_or_hash_from_the_server_drops_the_entry() -> None:
    for changed in (("sha1", b"salt-2", 10000), ("sha1", b"salt-1", 20000),
                    ("sha256", b"salt-1", 10000)):
        cache = SaltedPasswords(10)
        remember(cache, "a@x")
        assert cache.login("a@x", RIGHT).recall(changed) is None
        assert len(cache) == 0  # gone, not kept beside the new one
        assert cache.login("a@x", RIGHT).recall(PARAMS) is None  # nor back for the old


def test_only_a_login_that_succeeded_is_kept() -> None:
    cache = SaltedPasswords(10)
    memo = cache.login("a@x", RIGHT)
    assert memo.recall(PARAMS) is None
    memo.computed(PARAMS, b"salted")
    assert len(cache) == 0  # not before the server proved itself
    memo.refused()
    memo.confirmed()  # nothing pending any more
    assert len(cache) == 0


def test_a_refused_login_drops_what_it_used() -> None:
    cache = SaltedPasswords(10)
    remember(cache, "a@x")
    memo = cache.login("a@x", RIGHT)
    assert memo.recall(PARAMS) == b"salted"
    memo.refused()  # e.g. the password changed on the server, salt kept
    assert len(cache) == 0


def test_another_password_or_account_finds_nothing() -> None:
    cache = SaltedPasswords(10)
    remember(cache, "a@x")
    assert cache.login("a@x", WRONG).recall(PARAMS) is None  # a wrong password: full login
    assert cache.login("b@x", RIGHT).recall(PARAMS) is None
    assert cache.login("a@x", RIGHT).recall(PARAMS) == b"salted"  # the wrong one did no harm
    assert (cache.hits, cache.misses) == (1, 3)  # remember() missed once, then two misses


def test_no_repr_shows_a_value() -> None:
    cache = SaltedPasswords(10)
    remember(cache, "a@x", value=b"\x01secret-salted")
    memo = cache.login("a@x", RIGHT)
    shown = repr(cache) + repr(memo) + repr(cache._entries) + str(vars(cache))
    secret = b"\x01secret-salted"
    assert repr(secret) not in shown and secret.hex() not in shown and "secret" not in shown
    assert "SaltedPasswords 1 of 10" in repr(cache)
