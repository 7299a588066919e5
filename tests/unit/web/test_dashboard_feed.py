"""The dashboard feed on the embedded chain: each source gives rows, subscribers never block it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pervasive.chain import Ledger, Signer, open_ledger
from pervasive.config import Settings
from pervasive.contracts import (
    Agreement,
    AgreementFactory,
    DeploymentBook,
    ProofEvidence,
    Registry,
    compile_contract,
)
from pervasive.contracts.sale_order import SALE_ORDER, SALE_ORDER_FACTORY, SaleOrderFactory
from pervasive.crypto import PrivateKey, keccak256, sign_typed_data
from pervasive.domain import AgreementTerms, QoS, Reaction, ReactionKind, SensorField
from pervasive.offchain import ProofOfComputation, commitment
from pervasive.pki import CertificateAuthority
from pervasive.shadow import Operation, ShadowCore, ShadowKey, ShadowRecord, ShadowStore
from pervasive.web.feed import DashboardFeed, FeedLimits
from pervasive.web.feed_rows import Change, DeviceRow, OrderRow, Snapshot

ETHER = 10**18
SENSOR_KEY = PrivateKey(bytes.fromhex("5e" * 32))


@pytest.fixture
async def ledger(tmp_settings: Settings) -> AsyncIterator[Ledger]:
    chain = await open_ledger(tmp_settings, persist=False)
    try:
        yield chain
    finally:
        await chain.close()


@pytest.fixture
def sale_artifacts(artifacts: Path) -> Path:
    for name in (SALE_ORDER, SALE_ORDER_FACTORY):
        compile_contract(name, cache_dir=artifacts)
    return artifacts


@pytest.fixture
def book() -> DeploymentBook:
    return DeploymentBook(":memory:")


async def changes(feed: DashboardFeed, table: str) -> list[Any]:
    """Rows of ``table`` in the snapshot, after one look at the chain."""
    await feed.poll()
    return list(getattr(feed.snapshot(), table))


def store_update(store: ShadowStore, thing: str, state: dict[str, Any]) -> ShadowRecord:
    """Apply a shadow update the way a shadow service (of any process) stores it."""
    key = ShadowKey(thing)
    previous = store.load(key)
    payload = json.dumps({"state": state}).encode()
    outcome = ShadowCore().handle(key, Operation.UPDATE, payload, record=previous, now=time.time())
    assert outcome.record is not None and outcome.error is None
    store.commit(outcome.record, previous=previous, messages=outcome.messages)
    return outcome.record


async def test_sale_orders_show_listed_sold_and_released(
    ledger: Ledger, book: DeploymentBook, sale_artifacts: Path
) -> None:
    seller, buyer, warehouse = ledger.dev_signer(1), ledger.dev_signer(2), ledger.dev_signer(3)
    feed = DashboardFeed(ledger, book=book, artifacts=sale_artifacts)
    [] = await changes(feed, "orders")
    status = {row.key: row for row in feed.snapshot().status}
    assert "no sale-order factory" in status["orders"].text and status["chain"].ok

    factory = await SaleOrderFactory.open(ledger, seller, artifacts=sale_artifacts, book=book)
    order = await factory.create("Tesla", "alpha", 2019, 50 * ETHER, "4AA6", warehouse.address)
    [row] = await changes(feed, "orders")
    assert (row.address, row.item, row.price, row.state) == (
        order.address, "Tesla alpha 2019", "50 ETH", "listed"
    )  # fmt: skip
    await order.with_signer(buyer).buy()
    [row] = await changes(feed, "orders")
    assert (row.state, row.buyer) == ("sold", buyer.address)
    await order.with_signer(warehouse).release(buyer.address)
    [row] = await changes(feed, "orders")
    assert row.state == "released"
    texts = [e.text for e in feed.snapshot().events if e.source == "order"]
    assert texts == [
        f"released to {buyer.address} at the warehouse",
        f"sold to {buyer.address} for 50 ETH",
        f"listed by {seller.address} for 50 ETH",
    ]


def NODES(ledger: Ledger) -> tuple[Signer, Signer]:
    return ledger.dev_signer(3), ledger.dev_signer(4)


def proof(agreement: Agreement, node: Signer, index: int, window_hash: bytes) -> ProofEvidence:
    """Node ``index``'s signed proof of computation of window 4 over ``window_hash``."""
    key = PrivateKey(node.private_key)
    made = ProofOfComputation(commitment(b"42", bytes(32), key.address), 4, agreement.address,
                              window_hash)  # fmt: skip
    signature = sign_typed_data(key, made.typed_hash(agreement.domain_separator))
    return ProofEvidence(index, made.commitment, window_hash, signature)


async def world_agreement(ledger: Ledger, book: DeploymentBook, artifacts: Path) -> Agreement:
    """A registry recorded in ``book`` and one agreement of two parties and two nodes."""
    deployer = ledger.dev_signer(0)
    registry = await Registry.open(ledger, deployer, artifacts=artifacts, book=book)
    factory = await AgreementFactory.open(ledger, deployer, registry, artifacts=artifacts)
    parties, nodes = (ledger.dev_signer(1), ledger.dev_signer(2)), NODES(ledger)
    for name, party in zip(("provider", "insurer"), parties, strict=True):
        await registry.with_signer(party).add_user(name)
    for i, node in enumerate(nodes):
        public_key = PrivateKey(node.private_key).public_key.to_bytes()
        await registry.add_node(f"node-{i}", node.address, public_key, f"mqtt://n{i}.test:1883")
    fields = [SensorField.parse("unlocked:bool")]
    await registry.add_sensor("lock-1", SENSOR_KEY.public_key.to_compressed(), "lock", fields)
    terms = AgreementTerms(
        parties=tuple(p.address for p in parties), sensors=(SENSOR_KEY.address,),
        start_points=(0,), window_size=20, sliding_factor=10, function_name="rental_time",
        function_hash=keccak256(b"def rental_time(w): ..."),
        nodes=tuple(n.address for n in nodes), node_parties=(0, 1), qos=QoS.NO_PROOF,
        reward=0, reaction=Reaction(ReactionKind.NONE), expiry=int(time.time()) + 86_400,
    )  # fmt: skip
    approvals = [factory.sign_terms(PrivateKey(p.private_key), terms) for p in parties]
    return await factory.create(deployer, terms, ["lock-1"], approvals)


async def test_agreements_show_their_updates_and_disputes(
    ledger: Ledger, book: DeploymentBook, artifacts: Path
) -> None:
    feed = DashboardFeed(ledger, book=book, artifacts=artifacts)
    [] = await changes(feed, "agreements")
    assert "no registry" in {r.key: r for r in feed.snapshot().status}["agreements"].text
    agreement = await world_agreement(ledger, book, artifacts)
    nodes = NODES(ledger)
    [row] = await changes(feed, "agreements")
    assert (row.address, row.function, row.parties, row.nodes, row.updates) == (
        agreement.address, "rental_time", 2, 2, 0
    )  # fmt: skip
    assert row.window == "size 20, slide 10" and row.qos == "no proof"

    payload = agreement.update_payload(3, b"\x2a", keccak256(b"w[3]"))
    sigs = [payload.sign(PrivateKey(n.private_key), ledger.chain_id) for n in nodes]
    await agreement.update(nodes[0], payload, sigs)
    [row] = await changes(feed, "agreements")
    assert (row.updates, row.last_window, row.last_result) == (1, "3", "0x2a")

    evidence = [proof(agreement, n, i, keccak256(b"w seen by %d" % i)) for i, n in enumerate(nodes)]
    await agreement.dispute(nodes[1], 4, 1, proofs=evidence)
    [row] = await changes(feed, "agreements")
    assert row.disputes == 1 and row.last_dispute == f"window 4, kind 1, by {nodes[1].address}"
    texts = [e.text for e in feed.snapshot().events if e.subject == agreement.address]
    assert texts[0].startswith("dispute on window 4") and "window 3 updated" in texts[1]


async def test_device_rows_join_shadows_and_certificates(ledger: Ledger, tmp_path: Path) -> None:
    store = ShadowStore.open(":memory:")
    authority = CertificateAuthority.open(tmp_path / "pki", "pw")
    feed = DashboardFeed(ledger, authority=authority, shadows=store)
    async with feed, feed.subscribe() as subscription:
        assert isinstance(await subscription.next(), Snapshot)
        issued = authority.issue_device("door-1")  # the CA's listener: at once
        [row] = feed.snapshot().devices
        assert (row.key, row.certificate, row.version) == ("door-1", "active", None)

        record = store_update(store, "door-1", {"reported": {"door": "closed"}})
        feed.shadow_changed(record)  # what the shadow service's listener calls
        store_update(store, "door-1", {"desired": {"door": "open"}})  # another process
        feed.resync()
        [row] = feed.snapshot().devices
        assert (row.door, row.version, row.delta) == ("closed → open", 2, '{"door":"open"}')
        feed.shadow_changed(record)  # an older record arriving late changes nothing
        assert feed.snapshot().devices[0].version == 2

        store_update(store, "door-1", {"reported": {"door": "open"}})
        store_update(store, "crate-9", {"reported": {"temp": 4}})  # a thing without a certificate
        authority.revoke(issued.record.serial)
        feed.resync()
        rows = {row.key: row for row in feed.snapshot().devices}
        assert (rows["door-1"].door, rows["door-1"].certificate) == ("open", "revoked")
        assert rows["crate-9"].certificate == "none"
        seen: list[Change] = []
        while (message := await subscription.next(timeout=0)) is not None:
            assert isinstance(message, Change)
            seen.append(message)
        doors = [
            (c.row.door, c.row.certificate)
            for c in seen
            if isinstance(c.row, DeviceRow) and c.key == "door-1"
        ]
        assert doors == [
            ("", "active"),
            ("closed", "active"),
            ("closed → open", "active"),
            ("closed → open", "revoked"),  # the CA tells at once; the store look comes next
            ("open", "revoked"),
        ]


async def test_a_subscriber_that_never_reads_blocks_no_one(ledger: Ledger) -> None:
    store = ShadowStore.open(":memory:")
    feed = DashboardFeed(ledger, shadows=store, limits=FeedLimits(queue=5))
    stuck, reader = feed.subscribe(), feed.subscribe()
    assert isinstance(await stuck.next(), Snapshot)  # then it never reads again
    assert isinstance(await reader.next(), Snapshot)
    got = []
    for n in range(20):
        feed.shadow_changed(store_update(store, "door-1", {"reported": {"n": n}}))
        while (message := await reader.next(timeout=0)) is not None:
            got.append(message)
    versions = [c.row.version for c in got if isinstance(c.row, DeviceRow)]
    assert versions == list(range(1, 21))
    assert feed.counters["slow subscriber resynced"] == 1
    caught_up = await stuck.next()  # its queue was dropped: a fresh snapshot instead
    assert isinstance(caught_up, Snapshot) and caught_up.devices[0].version == 20
    assert await stuck.next(timeout=0) is None


async def test_a_snapshot_then_changes_and_a_reconnect_resumes(ledger: Ledger) -> None:
    store = ShadowStore.open(":memory:")
    feed = DashboardFeed(ledger, shadows=store)
    first = feed.subscribe()
    snapshot = await first.next()
    assert isinstance(snapshot, Snapshot) and snapshot.devices == ()
    feed.shadow_changed(store_update(store, "door-1", {"reported": {"door": "closed"}}))
    put, line = await first.next(), await first.next()  # the row, then its log line
    assert isinstance(put, Change) and isinstance(line, Change)
    assert (put.table, line.table) == ("devices", "events")
    first.close()
    feed.shadow_changed(store_update(store, "door-1", {"reported": {"door": "open"}}))

    again = feed.subscribe(line.id)  # an EventSource sends its Last-Event-ID
    missed = [await again.next(), await again.next()]
    assert [m.table for m in missed if isinstance(m, Change)] == ["devices", "events"]
    assert await again.next(timeout=0) is None
    assert isinstance(missed[0], Change) and isinstance(missed[0].row, DeviceRow)
    assert missed[0].row.door == "open"

    for stale in ("0000.3", "nonsense", f"{line.id.split('.')[0]}.99999"):
        assert isinstance(await feed.subscribe(stale).next(), Snapshot)
    assert feed.counters["malformed last event id"] == 1


async def test_bounded_tables_drop_the_oldest_order(
    ledger: Ledger, book: DeploymentBook, sale_artifacts: Path
) -> None:
    seller, warehouse = ledger.dev_signer(1), ledger.dev_signer(3).address
    factory = await SaleOrderFactory.open(ledger, seller, artifacts=sale_artifacts, book=book)
    orders = [await factory.create("Make", "m", 2020, ETHER, f"S{i}", warehouse) for i in range(3)]
    feed = DashboardFeed(ledger, book=book, artifacts=sale_artifacts,
                         limits=FeedLimits(rows=2, events=2))  # fmt: skip
    rows: list[OrderRow] = await changes(feed, "orders")
    assert [r.address for r in rows] == [orders[2].address, orders[1].address]
    assert len(feed.snapshot().events) == 2


async def test_a_reorganisation_rebuilds_the_chain_tables(
    ledger: Ledger, book: DeploymentBook, sale_artifacts: Path
) -> None:
    seller, warehouse = ledger.dev_signer(1), ledger.dev_signer(3).address
    factory = await SaleOrderFactory.open(ledger, seller, artifacts=sale_artifacts, book=book)
    feed = DashboardFeed(ledger, book=book, artifacts=sale_artifacts)
    await feed.poll()
    snapshot = await ledger.w3.provider.make_request("evm_snapshot", [])  # type: ignore[arg-type]
    await factory.create("Gone", "m", 2020, ETHER, "S1", warehouse)
    [_] = await changes(feed, "orders")
    subscription = feed.subscribe()
    await subscription.next()

    await ledger.w3.provider.make_request("evm_revert", [snapshot["result"]])  # type: ignore[arg-type]
    await ledger.mine(3)  # the other branch overtakes the order's block
    [] = await changes(feed, "orders")
    assert feed.counters["reorganisations"] == 1
    assert isinstance(await subscription.next(), Snapshot), "browsers start over from a snapshot"
    assert feed.snapshot().events[0].text.startswith("reorganisation at block")


async def test_a_deleted_shadow_leaves_the_table_unless_its_device_has_a_certificate(
    ledger: Ledger, tmp_path: Path
) -> None:
    store = ShadowStore.open(":memory:")
    authority = CertificateAuthority.open(tmp_path / "pki", "pw")
    feed = DashboardFeed(ledger, authority=authority, shadows=store)
    authority.issue_device("door-1")
    core, now = ShadowCore(), time.time()
    for key in (ShadowKey("door-1"), ShadowKey("door-1", "lock"), ShadowKey("crate-9")):
        body = b'{"state":{"reported":{"door":"closed"}}}'
        outcome = core.handle(key, Operation.UPDATE, body, record=None, now=now)
        assert outcome.record is not None
        store.commit(outcome.record, previous=None)
    feed.resync()
    assert [row.key for row in feed.snapshot().devices] == ["crate-9", "door-1", "door-1/lock"]
    for key in (ShadowKey("door-1"), ShadowKey("door-1", "lock"), ShadowKey("crate-9")):
        stored = store.load(key)
        outcome = core.handle(key, Operation.DELETE, b"", record=stored, now=now)
        assert outcome.record is not None and not outcome.record.exists
        feed.shadow_changed(outcome.record)  # the shadow service's listener on a delete
    [row] = feed.snapshot().devices
    assert (row.key, row.certificate, row.version, row.door) == ("door-1", "active", None, "")
    assert feed.snapshot().events[0].text == "deleted (version 1)"  # a delete keeps it
