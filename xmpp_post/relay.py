"""The seam between the HTTP side and the XMPP side: ``deliver(sender, message)``.

``login(sender)`` asks only whether the XMPP server accepts the sender's password (it
opens, or reuses, the session a delivery then uses): the guards call it before any other
work is done for a sender the gateway cannot vouch for (``http.guards``).

Besides delivering, a relay proves a sender's password without sending (``login``: a
template rendered for the web page is authenticated like a send), shows the stanza a
message would be (``preview``) and lists its open sessions (``sessions``).

The HTTP side knows only the ``Relay`` protocol, so each side can be tested with the
other faked (``xmpp_post.testing.FakeRelay``); ``xmpp.xmpp_relay.XmppRelay`` is the real one.
``deliver_each`` sends one request's messages to several recipients concurrently and
collects an outcome each, once the sender's scope allows every recipient (a token
limited to some recipients sends nothing when any other is named: 403) and its rate
allows every message (else nothing is sent: 429).

``deliver_with_files`` first uploads each file once (``Relay.upload``, XEP-0363; a
failure fails the request, nothing sent; encrypted, XEP-0454, for ``encrypt=omemo``),
then sends each recipient, in order, the text (if any) as a message of its own and each
file as a message whose body is its download URL, with that URL as XEP-0066
out-of-band data (``with_files``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from xmpp_post.errors import GatewayError, LoginRefused
from xmpp_post.files import FileToSend, UploadedFile
from xmpp_post.model import Outcome, OutgoingMessage, Receipt, Rejected, Sender, SessionInfo

UploadObserver = Callable[[FileToSend, str], None]  # (file, "uploaded" or the error code)


class Relay(Protocol):
    async def deliver(self, sender: Sender, message: OutgoingMessage) -> Receipt:
        """Send ``message`` as ``sender``; return once the XMPP server has it, or raise
        the ``GatewayError`` that says why not."""
        ...

    def verified(self, sender: Sender) -> bool:
        """Whether an open session already proved ``sender``'s password: a request of
        theirs is no login, so no password guess (the login throttle lets it through)."""
        ...

    async def upload(self, sender: Sender, file: FileToSend,
                     encrypt: bool = False) -> UploadedFile:
        """Put ``file`` on ``sender``'s upload service (XEP-0363); return its download
        URL once the service has it, or raise the ``GatewayError`` that says why not.
        ``encrypt``: only its ciphertext is uploaded, and the URL is XEP-0454's
        ``aesgcm://`` one (for OMEMO recipients: the key is in its fragment)."""
        ...

    def known_file_limit(self, domain: str) -> int | None:
        """The largest file ``domain``'s upload service takes, when already known;
        None otherwise (nothing is asked)."""
        ...

    async def login(self, sender: Sender) -> None:
        """Return once the XMPP server has accepted ``sender``'s password (an open session
        that proved it will do), sending nothing; raise ``LoginRefused`` if the server
        refused it, or the ``GatewayError`` that says why it could not be asked."""
        ...

    def preview(self, message: OutgoingMessage) -> str:
        """The ``<message/>`` that delivering ``message`` would write, as text (its type
        as given: the type a room's message takes is decided when it is sent)."""
        ...

    def sessions(self) -> list[SessionInfo]:
        """The XMPP sessions open now, most recently used last."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def deliver_each(relay: Relay, sender: Sender,
                       items: tuple[OutgoingMessage | Rejected, ...]) -> list[Outcome]:
    """Deliver every message concurrently; a failure is that recipient's ``Rejected``,
    except a refused login: that is the sender's failure, not a recipient's, and is
    raised (so the login throttle counts it, however many recipients were named).
    Raises ``Forbidden`` (nothing sent) when the sender's scope excludes a recipient, and
    ``RateLimited`` (nothing sent) when the messages would exceed its rate: a rate
    counts messages, one per recipient, not requests."""
    targets = [item.to for item in items if isinstance(item, OutgoingMessage)]
    sender.scope.check_recipients(targets)
    sender.scope.take(len(targets))

    async def one(item: OutgoingMessage | Rejected) -> Outcome:
        if isinstance(item, Rejected):
            return item
        try:
            return await relay.deliver(sender, item)
        except GatewayError as error:
            return Rejected(item.to, error)

    return await _each(items, one)


async def _each(items: tuple[OutgoingMessage | Rejected, ...],
                one: Callable[[OutgoingMessage | Rejected], Any]) -> list[Outcome]:
    if len(items) == 1:  # the common case: no task per recipient
        outcomes: list[Outcome] = [await one(items[0])]
    else:
        outcomes = list(await asyncio.gather(*(one(item) for item in items)))
    for outcome in outcomes:
        if isinstance(outcome, Rejected) and isinstance(outcome.error, LoginRefused):
            raise outcome.error
    return outcomes


async def deliver_with_files(relay: Relay, sender: Sender,
                             items: tuple[OutgoingMessage | Rejected, ...],
                             files: tuple[FileToSend, ...],
                             observe: UploadObserver | None = None,
                             ) -> tuple[list[Outcome], tuple[UploadedFile, ...]]:
    """Upload every file once, then send each recipient its series of messages
    (``with_files``). An upload's failure is raised (nothing sent); so are ``Forbidden``
    when the sender's scope excludes a recipient and ``RateLimited`` when its rate does
    not allow every message (text and files, to each recipient): nothing uploaded. A
    recipient's outcome is the receipt of its first message (with the delivery receipt
    of its last, if one was asked for) or the first failure, after which it is sent
    nothing more."""
    messages = [item for item in items if isinstance(item, OutgoingMessage)]
    sender.scope.check_recipients([message.to for message in messages])
    sender.scope.take(sum(bool(message.body) + len(files) or 1 for message in messages))
    uploaded: list[UploadedFile] = []
    encrypt = any(message.encrypt == "omemo" for message in messages)
    if any(isinstance(item, OutgoingMessage) for item in items):
        for file in files:
            try:
                uploaded.append(await relay.upload(sender, file, encrypt))
            except GatewayError as error:
                if observe is not None:
                    observe(file, error.code)
                raise
            if observe is not None:
                observe(file, "uploaded")

    async def series(item: OutgoingMessage | Rejected) -> Outcome:
        if isinstance(item, Rejected):
            return item
        receipts = []
        for message in with_files(item, uploaded):
            try:
                receipts.append(await relay.deliver(sender, message))
            except GatewayError as error:
                return Rejected(item.to, error)
        return replace(receipts[0], receipt=receipts[-1].receipt)

    return await _each(items, series), tuple(uploaded)


def with_files(message: OutgoingMessage,
               files: list[UploadedFile] | tuple[UploadedFile, ...]) -> list[OutgoingMessage]:
    """The messages that carry ``message`` and ``files`` to its recipient, in order: its
    text (if it has any), then one per file whose body is the file's URL, with that URL
    as out-of-band data. The first message keeps the subject and the client's id; the
    last asks for the delivery receipt, if one was asked for."""
    sent = [replace(message, receipt=False)] if message.body else []
    for file in files:
        sent.append(replace(message, body=file.url, oob_url=file.url, receipt=False,
                            subject=None if sent else message.subject,
                            id=None if sent else message.id))
    if not sent:
        return [message]
    sent[-1] = replace(sent[-1], receipt=message.receipt)
    return sent
