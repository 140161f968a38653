"""Message fields and several recipients end to end, with real receiving clients."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote, urlencode

from tests.helpers import AccountFactory, Client, GatewayFactory, ReceiverFactory
from tests.helpers.faults import nothing_else_arrived
from xmpp_post.service import Gateway

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
URL = "https://ci.example.org/builds/42?log=full&x=1"


async def test_every_field_in_json_reaches_the_recipient(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    doc = json.dumps({"to": bob.local, "type": "normal", "body": "build 42 failed",
                      "subject": "CI <alert>", "thread": "build-42", "id": "ci.42:1",
                      "lang": "en-GB", "oob_url": URL})
    reply = await http.post(gateway, "/msg", doc, sender=alice, content_type=JSON)
    assert reply.status == 201, reply.text
    assert reply.json["id"] == "ci.42:1"
    assert "receipt" not in reply.json and "nick" not in reply.json
    got = await inbox.next()
    assert got.id == "ci.42:1" and got.type == "normal"
    assert got.subject == "CI <alert>" and got.thread == "build-42"
    assert got.body == f"build 42 failed\n{URL}"  # the URL also in the body
    assert 'xml:lang="en-GB"' in got.xml
    assert '<x xmlns="jabber:x:oob"><url>' in got.xml
    assert "https://ci.example.org/builds/42?log=full&amp;x=1</url>" in got.xml
    assert "urn:xmpp:receipts" not in got.xml


async def test_fields_in_a_form_and_in_the_query_string_of_text_plain(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    form = urlencode({"to": bob.jid, "subject": "from a form", "oob_url": URL})
    reply = await http.post(gateway, "/msg", form, sender=alice, content_type=FORM)
    assert reply.status == 201, reply.text
    got = await inbox.next()
    assert (got.subject, got.body) == ("from a form", URL)  # no body: the URL is the text
    query = urlencode({"subject": "from the query", "thread": "t1", "id": "q-1"})
    reply = await http.post(gateway, f"/msg/{bob.local}?{query}", "plain text body",
                            sender=alice)
    assert reply.status == 201, reply.text
    assert reply.json["id"] == "q-1"
    got = await inbox.next()
    assert (got.subject, got.thread, got.id, got.body) == (
        "from the query", "t1", "q-1", "plain text body")


async def test_repeated_client_ids_are_each_acknowledged(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    replies = await asyncio.gather(*(
        http.post(gateway, f"/msg/{bob.local}?id=same", f"copy {i}", sender=alice)
        for i in range(20)))
    assert [r.status for r in replies] == [201] * 20
    got = await inbox.collect(20)
    assert {m.id for m in got} == {"same"}
    assert sorted(m.body for m in got) == sorted(f"copy {i}" for i in range(20))


async def test_delivery_receipts_received_and_timeout(
        start_gateway: GatewayFactory, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    gateway = await start_gateway(receipt_timeout="1")
    alice, bob, carol = account("alice"), account("bob"), account("carol")
    answering = await receiver(bob, receipts=True)
    silent = await receiver(carol)
    reply = await http.post(gateway, f"/msg/{bob.local}?receipt=true", "got it?", sender=alice)
    assert reply.status == 201, reply.text
    assert reply.json["receipt"] == "received"
    assert (await answering.next()).body == "got it?"
    loop = asyncio.get_running_loop()
    started = loop.time()
    doc = json.dumps({"to": carol.local, "body": "hello?", "receipt": True})
    reply = await http.post(gateway, "/msg", doc, sender=alice, content_type=JSON)
    assert reply.status == 201, reply.text
    assert reply.json["receipt"] == "timeout"
    assert 1.0 <= loop.time() - started < 4.0
    got = await silent.next()
    assert '<request xmlns="urn:xmpp:receipts"' in got.xml


async def test_several_recipients_in_every_format(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob, carol = account("alice"), account("bob"), account("carol")
    bob_in, carol_in = await receiver(bob), await receiver(carol)
    requests = [
        ("/msg", json.dumps({"to": [bob.local, carol.jid], "body": "json"}), JSON),
        ("/msg", urlencode([("to", bob.jid), ("to", carol.local), ("body", "form")]), FORM),
        (f"/msg/{bob.local},{quote(carol.jid)}", "path", "text/plain"),
        (f"/msg?to={bob.local}&to={carol.local}", "query", "text/plain"),
    ]
    for path, data, content_type in requests:
        reply = await http.post(gateway, path, data, sender=alice, content_type=content_type)
        assert reply.status == 201, reply.text
        results = reply.json["results"]
        assert [(r["to"], r["status"], r["type"]) for r in results] == [
            (bob.jid, 201, "chat"), (carol.jid, 201, "chat")]
        assert results[0]["id"] != results[1]["id"]
    for inbox in (bob_in, carol_in):
        assert [m.body for m in await inbox.collect(4)] == ["json", "form", "path", "query"]


async def test_several_recipients_one_invalid_is_207_and_duplicates_count_once(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    inbox = await receiver(bob)
    doc = json.dumps({"to": [bob.local, "a@b@c", bob.jid], "body": "some fail",
                      "id": "multi-1"})
    reply = await http.post(gateway, "/msg", doc, sender=alice, content_type=JSON)
    assert reply.status == 207, reply.text
    results = reply.json["results"]
    assert len(results) == 2  # bob named twice: one message
    assert results[0] == {"status": 201, "id": "multi-1", "from": alice.jid, "to": bob.jid,
                          "type": "chat"}
    assert results[1]["to"] == "a@b@c" and results[1]["status"] == 400
    assert results[1]["error"] == "invalid_jid" and results[1]["message"]
    assert (await inbox.next()).body == "some fail"
    await nothing_else_arrived(http, gateway, alice, inbox, bob.local)  # not twice


async def test_one_recipient_keeps_the_single_response_shape(
        gateway: Gateway, http: Client, account: AccountFactory,
        receiver: ReceiverFactory) -> None:
    alice, bob = account("alice"), account("bob")
    await receiver(bob)
    reply = await http.post(gateway, "/msg", urlencode({"to": bob.local, "body": "one"}),
                            sender=alice, content_type=FORM)
    assert reply.status == 201 and set(reply.json) == {"id", "from", "to", "type"}
    reply = await http.post(gateway, "/msg", json.dumps({"to": [bob.local], "body": "list"}),
                            sender=alice, content_type=JSON)
    assert reply.status == 201 and [r["to"] for r in reply.json["results"]] == [bob.jid]


async def test_field_errors(gateway: Gateway, http: Client, account: AccountFactory) -> None:
    alice = account("alice")
    cases = [
        ({"to": "bob", "body": "x", "id": "has space"}, 400, "invalid_id"),
        ({"to": "bob", "body": "x", "lang": "english!"}, 400, "invalid_lang"),
        ({"to": "bob", "body": "x", "oob_url": "ftp://example.org/f"}, 400, "invalid_oob_url"),
        ({"to": "bob", "body": "x", "thread": "a/b"}, 400, "invalid_thread"),
        ({"to": "bob", "body": "x", "receipt": "maybe"}, 400, "invalid_receipt"),
        ({"to": "bob", "body": "x", "subject": "bell \x07"}, 400, "invalid_character"),
        ({"to": [f"u{i}" for i in range(51)], "body": "x"}, 400, "too_many_recipients"),
        ({"to": "bob", "body": "x", "nick": " "}, 400, "invalid_nick"),
    ]
    for fields, status, code in cases:
        reply = await http.post(gateway, "/msg", json.dumps(fields), sender=alice,
                                content_type=JSON)
        assert reply.status == status, (fields, reply.text)
        assert reply.json["error"] == code, (fields, reply.json)
    reply = await http.post(gateway, "/msg/bob?subject=a", json.dumps(
        {"body": "x", "subject": "b"}), sender=alice, content_type=JSON)
    assert reply.status == 400 and reply.json["error"] == "duplicate_field"
