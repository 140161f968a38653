"""OMEMO's CPU cost: ``python -m bench.omemo [--messages 200] [--devices 1 2 4 8]``.

In one process, without a server: the gateway's own encryption (``OmemoDevices.encrypt``
with the sender's device, as a request with ``encrypt=omemo`` runs it) against
recipients with 1, 2, 4, 8 devices, every device a python-omemo session manager of its
own, its bundles and device lists published to a dictionary that stands in for PEP (the
network is not measured: only CPU). Keys are kept in the same sealed store the gateway
uses (``state.sealed`` over the in-memory key-value store), so sealing is counted.

For each number of devices it reports the CPU time (``time.process_time``) of:

* the first message, which builds a session with each device (X3DH, bundle parsing);
* each following message (a Double Ratchet step per device, the XEP-0420 envelope, the
  AES-GCM of the text, the sealed writes), per message and per recipient device;
* making the sender's device (keys for both OMEMO versions, once per account).

Half of the devices offer only OMEMO 0.3, the rest both versions (so each message
carries both ``<encrypted/>`` elements, as it would to a mixed set of clients).
Run on demand only: never as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any

import oldmemo
import twomemo
from omemo.bundle import Bundle
from omemo.types import DeviceList

from xmpp_post.state.memory_lasting import memory_lasting
from xmpp_post.state.sealed import SealedKeyValue
from xmpp_post.xmpp.omemo_backends import OLDMEMO, TWOMEMO
from xmpp_post.xmpp.omemo_devices import OmemoDevices
from xmpp_post.xmpp.omemo_manager import (
    UNDECIDED,
    GatewaySessionManager,
    Link,
)
from xmpp_post.xmpp.omemo_store import AccountStorage

SECRET = b"bench-omemo-secret-" * 3
PEP_LISTS: dict[tuple[str, str], DeviceList] = {}  # (namespace, jid) -> device list
PEP_BUNDLES: dict[tuple[str, str, int], Bundle] = {}


class InMemoryPep(GatewaySessionManager):
    """The gateway's session manager with PEP replaced by the dictionaries above."""

    async def _upload_bundle(self, bundle: Bundle) -> None:  # type: ignore[override]
        PEP_BUNDLES[(bundle.namespace, bundle.bare_jid, bundle.device_id)] = bundle

    async def _delete_bundle(self, namespace: str, device_id: int) -> None:  # type: ignore[override]
        PEP_BUNDLES.pop((namespace, self.link.own_jid, device_id), None)

    async def _upload_device_list(  # type: ignore[override]
            self, namespace: str, device_list: DeviceList) -> None:
        PEP_LISTS[(namespace, self.link.own_jid)] = dict(device_list)

    async def _download_device_list(  # type: ignore[override]
            self, namespace: str, bare_jid: str) -> DeviceList:
        return dict(PEP_LISTS.get((namespace, bare_jid), {}))

    async def _download_bundle(  # type: ignore[override]
            self, namespace: str, bare_jid: str, device_id: int) -> Bundle:
        return PEP_BUNDLES[(namespace, bare_jid, device_id)]


def in_memory_class(link: Link) -> type[GatewaySessionManager]:
    return type("BenchSessionManager", (InMemoryPep,), {"link": link})


async def recipient_device(jid: str, only_oldmemo: bool) -> None:
    """One more device of ``jid``, published (its own store: a separate client)."""
    storage = AccountStorage(memory_lasting().kv, jid)
    backends: list[Any] = [oldmemo.Oldmemo(storage)]
    if not only_oldmemo:
        backends.insert(0, twomemo.Twomemo(storage))
    manager = await in_memory_class(Link(jid, 1.0)).create(
        backends, storage, jid, None, UNDECIDED)
    await manager.shutdown()


async def measure(devices: int, messages: int) -> dict[str, float]:
    recipient = f"bob{devices}@bench.example"
    for index in range(devices):
        await recipient_device(recipient, only_oldmemo=index % 2 == 1)
    store = SealedKeyValue(memory_lasting().kv, SECRET, "omemo keys")
    gateway = OmemoDevices(store, list_ttl=3600.0, managers=in_memory_class)
    sender = f"alice{devices}@bench.example"
    started = time.process_time()
    await gateway.device(sender, client=None)
    made = time.process_time() - started
    started = time.process_time()
    first = await gateway.encrypt(sender, None, recipient, "db1: /var at 91%")
    first_cpu = time.process_time() - started
    started = time.process_time()
    for number in range(messages):
        await gateway.encrypt(sender, None, recipient, f"alert {number}: db1 /var at 91%")
    each = (time.process_time() - started) / messages
    await gateway.stop()
    assert set(first.namespaces) == ({TWOMEMO, OLDMEMO} if devices > 1 else {TWOMEMO})
    return {"device": made, "first": first_cpu, "each": each,
            "per_device": each / devices}


async def run(counts: list[int], messages: int) -> None:
    logging.getLogger("omemo").setLevel(logging.ERROR)  # "own device not listed yet"
    print(f"OMEMO encryption, CPU per message ({messages} messages after the first), "
          "no network")
    print("devices  make sender's device ms  first message ms  each message ms  "
          "each per device ms")
    for count in counts:
        got = await measure(count, messages)
        print(f"{count:7d}  {got['device'] * 1e3:24.1f}  {got['first'] * 1e3:16.1f}  "
              f"{got['each'] * 1e3:15.2f}  {got['per_device'] * 1e3:18.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    asyncio.run(run(args.devices, args.messages))


if __name__ == "__main__":
    main()
