"""Files, the pure parts: names made safe, types chosen, and the messages that carry a
request's text and files (the relay faked)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import examples
from xmpp_post.errors import Forbidden, RateLimited, UploadFailed
from xmpp_post.files import (
    MAX_NAME,
    UploadedFile,
    content_type_for,
    is_https_url,
    safe_name,
    unnamed,
)
from xmpp_post.files import FileToSend as File
from xmpp_post.model import OutgoingMessage, Receipt, Rejected, Scope, Sender
from xmpp_post.relay import deliver_with_files, with_files
from xmpp_post.testing import FakeRelay

ALICE = Sender("alice@example.org", "pw")


@pytest.mark.parametrize(("raw", "safe"), [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\graph.png", "graph.png"),
    ("..", "file"),
    ("...", "file"),
    ("", "file"),
    (None, "file"),
    ("  .bashrc ", "bashrc"),
    ("a\x00b\x1fc\x7fd\x85e.txt", "abcde.txt"),
    ("invoice\u202egpj.exe", "invoicegpj.exe"),  # no right-to-left override
    ("dir/", "file"),
    ("cafe\u0301.txt", "caf\u00e9.txt"),  # NFC
])
def test_names_lose_paths_controls_and_dots(raw: str | None, safe: str) -> None:
    assert safe_name(raw) == safe


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = safe_name("x" * 500 + ".tar.gz")
    assert len(name) == MAX_NAME and name.endswith("x.gz")
    assert safe_name("y" * 500) == "y" * MAX_NAME
    assert len(safe_name("z" * 200 + "." + "e" * 40)) == MAX_NAME  # no extension kept


@settings(max_examples=examples(100))
@given(st.text(max_size=600))
def test_any_name_is_safe(raw: str) -> None:
    name = safe_name(raw)
    assert 0 < len(name) <= MAX_NAME
    assert "/" not in name and "\\" not in name and name not in (".", "..")
    assert not name.startswith(".") and name == name.strip()
    assert not any(ord(char) < 0x20 or 0x7f <= ord(char) <= 0x9f
                   or 0x202a <= ord(char) <= 0x202e for char in name)


@pytest.mark.parametrize(("name", "given_type", "chosen"), [
    ("report.pdf", "application/pdf", "application/pdf"),
    ("graph.png", "application/octet-stream", "image/png"),  # generic: the name says more
    ("graph.png", None, "image/png"),
    ("log.txt", "application/x-www-form-urlencoded", "text/plain"),  # curl -d's, not a file's
    ("notes", "Text/Plain; charset=UTF-8", "text/plain; charset=utf-8"),
    ("notes", "text/plain; format=flowed", "text/plain"),
    ("blob", "not a type", "application/octet-stream"),
    ("blob", "multipart/mixed; boundary=x", "application/octet-stream"),
    ("x.unknownext", "", "application/octet-stream"),
    ("backup.log", None, "text/plain"),
    ("db.tar.gz", None, "application/gzip"),  # compressed bytes, whatever is inside
])
def test_the_type_comes_from_the_part_else_the_name(name: str, given_type: str | None,
                                                    chosen: str) -> None:
    assert content_type_for(name, given_type) == chosen


def test_a_file_without_a_name_is_named_as_ntfy_names_it() -> None:
    assert unnamed("text/plain") == "attachment.txt"
    assert unnamed("application/octet-stream") == "attachment.bin"
    assert unnamed("application/x-nothing-known") == "attachment.bin"


def test_slots_are_https() -> None:
    assert is_https_url("https://upload.example.org:5281/f/x.png")
    for url in ("http://upload.example.org/x", "https:///x", "https://h:99999/x",
                "https://h/a b", "ftp://h/x", ""):
        assert not is_https_url(url), url


# the messages of a request with files --------------------------------------------------

FILES = (UploadedFile("a.png", 3, "image/png", "https://u.example/1/a.png"),
         UploadedFile("b.log", 5, "text/plain", "https://u.example/2/b.log"))


def test_the_text_goes_first_then_each_file_as_its_url_with_oob() -> None:
    message = OutgoingMessage(to="bob@example.org", body="Nightly report", subject="CI",
                              id="r1", receipt=True, thread="t1")
    sent = with_files(message, FILES)
    assert [m.body for m in sent] == ["Nightly report", FILES[0].url, FILES[1].url]
    assert [m.oob_url for m in sent] == [None, FILES[0].url, FILES[1].url]
    assert [m.subject for m in sent] == ["CI", None, None]
    assert [m.id for m in sent] == ["r1", None, None]
    assert [m.receipt for m in sent] == [False, False, True]  # the last one's receipt
    assert {m.thread for m in sent} == {"t1"}


def test_without_text_the_first_file_carries_the_subject_and_id() -> None:
    sent = with_files(OutgoingMessage(to="bob@example.org", body="", subject="S", id="i"),
                      FILES[:1])
    assert [(m.body, m.subject, m.id) for m in sent] == [(FILES[0].url, "S", "i")]


def _file(tmp_path: Path, name: str, data: bytes) -> File:
    path = tmp_path / name
    path.write_bytes(data)
    return File(path, name, len(data), "application/octet-stream")


async def test_each_file_is_uploaded_once_for_several_recipients(tmp_path: Path) -> None:
    relay = FakeRelay()
    items = (OutgoingMessage(to="bob@example.org", body="hi"),
             OutgoingMessage(to="carol@example.org", body="hi"),
             Rejected("bad", Forbidden("no")))
    files = (_file(tmp_path, "a.bin", b"\x00\x01"),)
    seen: list[tuple[str, str]] = []
    outcomes, uploaded = await deliver_with_files(
        relay, ALICE, items, files, lambda file, outcome: seen.append((file.name, outcome)))
    assert len(relay.uploaded) == 1 and seen == [("a.bin", "uploaded")]
    assert relay.uploaded[0].sha256 == hashlib.sha256(b"\x00\x01").hexdigest()
    for to in ("bob@example.org", "carol@example.org"):  # each in order: text, then file
        assert [m.body for _, m in relay.sent if m.to == to] == ["hi", uploaded[0].url]
    assert isinstance(outcomes[0], Receipt) and isinstance(outcomes[2], Rejected)


async def test_a_failed_upload_sends_nothing(tmp_path: Path) -> None:
    relay = FakeRelay()
    relay.upload_fail = UploadFailed("the service answered 500")
    seen: list[str] = []
    with pytest.raises(UploadFailed):
        await deliver_with_files(relay, ALICE, (OutgoingMessage(to="b@example.org", body=""),),
                                 (_file(tmp_path, "a", b"x"),),
                                 lambda _file, outcome: seen.append(outcome))
    assert relay.sent == [] and seen == ["upload_failed"]


async def test_a_recipient_out_of_scope_uploads_nothing(tmp_path: Path) -> None:
    relay = FakeRelay()
    scoped = Sender("alice@example.org", "pw", via="token:ci",
                    scope=Scope(to=frozenset({"ops@example.org"})))
    with pytest.raises(Forbidden):
        await deliver_with_files(relay, scoped, (OutgoingMessage(to="b@example.org", body="x"),),
                                 (_file(tmp_path, "a", b"x"),))
    assert relay.uploaded == [] and relay.sent == []


async def test_a_recipient_that_fails_gets_nothing_more(tmp_path: Path) -> None:
    async def refuse_text(sender: Sender, message: OutgoingMessage) -> Receipt:
        if message.body == "text":
            raise Forbidden("no")
        return Receipt("i", sender.jid, message.to, message.type)

    relay = FakeRelay(refuse_text)
    outcomes, _ = await deliver_with_files(
        relay, ALICE, (OutgoingMessage(to="b@example.org", body="text"),),
        (_file(tmp_path, "a", b"x"),))
    assert isinstance(outcomes[0], Rejected) and relay.sent == []


async def test_a_rate_counts_every_message_before_anything_is_uploaded(
        tmp_path: Path) -> None:
    taken: list[int] = []

    def allowance(messages: int) -> None:
        taken.append(messages)
        if messages > 4:
            raise RateLimited("over the rate", retry_after=9, subject="token:ci")

    relay = FakeRelay()
    scoped = Sender("alice@example.org", "pw", via="token:ci", scope=Scope(allowance=allowance))
    files = (_file(tmp_path, "a", b"x"), _file(tmp_path, "b", b"y"))
    two = (OutgoingMessage(to="b@example.org", body="hi"),
           OutgoingMessage(to="c@example.org", body="hi"))
    with pytest.raises(RateLimited):  # a text and two files each: 6 messages
        await deliver_with_files(relay, scoped, two, files)
    assert relay.uploaded == [] and relay.sent == []
    alone = tuple(replace(item, body="") for item in two)  # two files each: 4
    await deliver_with_files(relay, scoped, alone, files)
    assert taken == [6, 4] and len(relay.sent) == 4
