"""Intermediate nodes on the embedded chain and the embedded broker: outcomes asserted on-chain.

Each test provisions a smart-lock agreement (provider pays the insurer per rental
second), runs real node services over MQTT, plays a month of lock messages (one window)
and checks what the Agreement contract recorded: the result and payment, a dispute of
the right kind, or nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from node_harness import RATE, Harness, Lossy, running

from pervasive.apps.smartlock import RENTAL_TIME, decode_monthly_rental
from pervasive.chain import Receipt
from pervasive.committee import decode_envelope
from pervasive.config import NodeSettings
from pervasive.contracts import AgreementFactory
from pervasive.crypto import PrivateKey, abi_encode, sign_typed_data
from pervasive.domain import QoS, SigningMode
from pervasive.errors import NotFound, TransactionReverted
from pervasive.offchain import DisputeKind, MessageKind, OffchainFunction
from pervasive.offchain.node import IntermediateNodeService, fetch_window
from pervasive.offchain.node.transport import node_inbox_topic
from pervasive.sensing import SensorDeclaration, SensorMessage, sign_sensor_message

Make = Callable[..., Awaitable[Harness]]


def recorded(t: int) -> Callable[[IntermediateNodeService], bool]:
    return lambda s: any(e.kind == "recorded" and e.t == t for e in s.events)


def disputed(t: int) -> Callable[[IntermediateNodeService], bool]:
    return lambda s: any(e.kind == "disputed" and e.t == t for e in s.events)


def update_receipt(*services: IntermediateNodeService) -> Receipt:
    receipts = [e.receipt for s in services for e in s.events if e.kind == "recorded" and e.receipt]
    assert len(receipts) == 1, "exactly one node sends the update"
    return receipts[0]


def recorded_result(h: Harness, receipt: Receipt) -> bytes:
    events = [
        e for e in h.agreement.contract.decode_logs(receipt.logs) if e.name.startswith("Updated")
    ]
    assert len(events) == 1
    return bytes(events[0].args["result"])


async def dispute_kinds(h: Harness) -> list[int]:
    count = await h.agreement.dispute_count()
    return [int((await h.agreement.contract.call("dispute_at", i))[1]) for i in range(count)]


async def assert_correct_record(h: Harness, *services: IntermediateNodeService) -> None:
    receipt = update_receipt(*services)
    result = decode_monthly_rental(recorded_result(h, receipt))
    assert result.seconds == h.month.total_seconds
    assert len(await h.agreement.records()) == 1
    assert await h.agreement.credit_of(h.agreement.terms.parties[1]) == RATE * result.seconds


async def test_honest_nodes_agree_and_the_premium_is_paid(make: Make) -> None:
    h = await make(nodes=2)
    a, b = await h.node(0), await h.node(1)
    async with running(a, b):
        await h.publish_month()
        await a.wait_for(recorded(0), timeout=30)
        await b.wait_for(recorded(0), timeout=30)
    result = decode_monthly_rental(recorded_result(h, update_receipt(a, b)))
    assert result.month == 202603
    assert result.rentals == h.month.rentals_per_lock
    await assert_correct_record(h, a, b)
    assert [e.detail for e in b.events if e.kind == "recorded"] == ["already recorded on-chain"]


async def test_three_nodes_in_leader_mode_agree(make: Make) -> None:
    h = await make(nodes=3, locks=2, mode=SigningMode.LEADER)
    nodes = [await h.node(i) for i in range(3)]
    assert {n.agreement.mode for n in nodes} == {SigningMode.LEADER}  # read from the terms
    async with running(*nodes):
        await h.publish_month()
        for node in nodes:
            await node.wait_for(recorded(0), timeout=30)
    await assert_correct_record(h, *nodes)


@pytest.mark.parametrize("qos", [QoS.OFFCHAIN_PROOF, QoS.ONCHAIN_PROOF])
async def test_fast_protocol_records_the_leaders_compact_update_without_an_extra_exchange(
    make: Make, qos: QoS
) -> None:
    h = await make(nodes=3, mode=SigningMode.FAST, qos=qos)
    options = NodeSettings(
        gap_timeout=1.0, protocol_timeout=2.0, takeover_after=1.0, compact_wait=0.2
    )
    nodes = [await h.node(i, options=options) for i in range(3)]
    leader = next(n for n in nodes if n.address == h.agreement.terms.nodes[0])
    assert {n.agreement.mode for n in nodes} == {SigningMode.FAST}
    async with running(*nodes):
        await h.publish_month()
        # one window: no round 1 to ride on, so P_0 goes alone after compact_wait
        await leader.wait_for(recorded(0), timeout=30)
    await assert_correct_record(h, *nodes)
    assert leader.stats.updates_sent == 1
    for node in nodes:
        assert "UPDATE_SIGNATURE" not in node.stats.protocol_sent
        assert node.stats.disputed == 0


def lying(value: int) -> OffchainFunction:
    """A node that claims to run the agreed code (same name and hash) but does not."""
    result = abi_encode(
        ["uint256", "uint256", "uint256", "uint256", "bytes32"], [value, 202603, 1, 1, bytes(32)]
    )
    return OffchainFunction(RENTAL_TIME.name, RENTAL_TIME.source_hash, lambda w: result)


async def test_a_node_computing_a_wrong_result_leads_to_a_dispute(make: Make) -> None:
    h = await make(nodes=2)
    honest, liar = await h.node(0), await h.node(1, function=lying(1))
    async with running(honest, liar):
        await h.publish_month()
        await honest.wait_for(disputed(0), timeout=30)
        await honest.wait_for(lambda s: s.stats.disputes_sent + liar.stats.disputes_sent >= 1, 30)
    assert DisputeKind.RESULT_MISMATCH in await dispute_kinds(h)
    assert await h.agreement.records() == []
    assert await h.agreement.credit_of(h.agreement.terms.parties[1]) == 0


async def test_a_node_that_missed_a_message_has_a_different_window_hash(make: Make) -> None:
    h = await make(nodes=2)
    victim = h.lock_messages()[2][1].encode()
    lossy: list[Lossy] = []

    def lose(connection: object) -> Lossy:
        lossy.append(Lossy(connection, lambda m: m.payload == victim))  # type: ignore[arg-type]
        return lossy[0]

    a, b = await h.node(0), await h.node(1, wrap=lose)
    async with running(a, b):
        await h.publish_month()
        await a.wait_for(disputed(0), timeout=30)
        await b.wait_for(lambda s: s.stats.gaps == 1, timeout=30)
        await a.wait_for(lambda s: s.stats.disputes_sent + b.stats.disputes_sent >= 1, 30)
    assert lossy[0].dropped == 1
    assert DisputeKind.WINDOW_HASH_MISMATCH in await dispute_kinds(h)
    assert await h.agreement.records() == []


async def test_a_lazy_copier_cannot_see_results_before_committing(make: Make) -> None:
    h = await make(nodes=2)
    reveals_seen: list[bytes] = []
    seen_when_computing: list[int] = []

    class Watch(Lossy):
        async def messages(self):  # type: ignore[no-untyped-def]
            async for message in self.inner.messages():
                if message.topic.startswith("pervasive/nodes/") and not message.topic.endswith(
                    ("/windows", "/reply")
                ):
                    decoded = decode_envelope(message.payload)
                    if decoded.kind == MessageKind.REVEAL:
                        reveals_seen.append(decoded.body)
                yield message

    def copy_whatever_was_revealed(windows: object) -> bytes:
        seen_when_computing.append(len(reveals_seen))
        return abi_encode(["uint256"], [0])  # nothing to copy: a guess

    copier_function = OffchainFunction(
        RENTAL_TIME.name, RENTAL_TIME.source_hash, copy_whatever_was_revealed
    )
    honest = await h.node(0)
    copier = await h.node(1, function=copier_function, wrap=lambda c: Watch(c, lambda m: False))
    async with running(honest, copier):
        await h.publish_month()
        await honest.wait_for(disputed(0), timeout=30)
        await honest.wait_for(lambda s: s.stats.disputes_sent + copier.stats.disputes_sent >= 1, 30)
    assert seen_when_computing == [0], "the copier had to commit before any result was revealed"
    assert DisputeKind.RESULT_MISMATCH in await dispute_kinds(h)
    assert await h.agreement.records() == []


def forged(h: Harness, q: int) -> bytes:
    """A message ``q`` claiming to be lock 0's, signed by an attacker's key."""
    key = h.lock_keys[0]
    declaration = SensorDeclaration.create(key.public_key, "smart-lock", _FIELDS)
    attacker = sign_sensor_message(key, declaration, q, [1000, "token-forged", False, 2**40])
    signature = sign_typed_data(PrivateKey(b"\x77" * 32), attacker.typed_hash)
    return SensorMessage(key.public_key, "smart-lock", q, attacker.values, signature).encode()


_FIELDS = [("bicycle", "uint64"), ("token", "string"), ("unlocked", "bool"), ("time", "uint64")]


async def run_with_extra(
    h: Harness, before: list[bytes], after: list[bytes]
) -> list[IntermediateNodeService]:
    nodes = [await h.node(0), await h.node(1)]
    async with running(*nodes):
        await h.publish([(0, p) for p in before])
        await h.publish_month()
        await h.publish([(0, p) for p in after])
        for node in nodes:
            await node.wait_for(recorded(0), timeout=30)
            await node.wait_for(
                lambda s: (
                    s.stats.accepted + sum(s.stats.rejected.values())
                    >= len(h.lock_messages()) + len(before) + len(after)
                ),
                10,
            )
    return nodes


async def test_a_forged_sensor_message_is_rejected_and_counted(make: Make) -> None:
    h = await make(nodes=2)
    nodes = await run_with_extra(h, [forged(h, 0)], [forged(h, 1)])
    for node in nodes:
        assert node.stats.rejected["signature"] == 2
        assert node.stats.rejected["schema"] == 0
    await assert_correct_record(h, *nodes)


async def test_a_replayed_sequence_number_is_rejected_and_counted(make: Make) -> None:
    h = await make(nodes=2)
    messages = [m for lock, m in h.lock_messages() if lock == 0]
    key = h.lock_keys[0]
    declaration = SensorDeclaration.create(key.public_key, messages[0].sensor_type, _FIELDS)
    second_version = sign_sensor_message(key, declaration, 1, [1000, "token-x", True, 5])
    nodes = await run_with_extra(h, [], [messages[1].encode(), second_version.encode()])
    for node in nodes:
        assert node.stats.rejected["replay"] == 2
    await assert_correct_record(h, *nodes)


async def test_a_schema_violation_is_rejected_and_counted(make: Make) -> None:
    h = await make(nodes=2)
    key = h.lock_keys[0]
    wrong = SensorDeclaration.create(
        key.public_key,
        "smart-lock",
        [("bicycle", "uint64"), ("token", "string"), ("time", "uint64")],
    )
    violation = sign_sensor_message(key, wrong, 0, [1000, "token-x", 5]).encode()
    nodes = await run_with_extra(h, [violation], [])
    for node in nodes:
        assert node.stats.rejected["schema"] == 1
    await assert_correct_record(h, *nodes)


async def test_a_duplicate_update_is_refused_and_never_resent(make: Make) -> None:
    h = await make(nodes=2)
    a, b = await h.node(0), await h.node(1)
    async with running(a, b):
        await h.publish_month()
        await a.wait_for(recorded(0), timeout=30)
        await b.wait_for(recorded(0), timeout=30)
    designated = a if a.stats.updates_sent else b
    [submission] = [designated.submitter.get(0)]
    assert submission is not None
    with pytest.raises(TransactionReverted, match="already updated"):
        await designated.submitter.port.submit(submission.transaction)
    assert await designated.submitter.submit(submission) is None
    assert a.stats.updates_sent + b.stats.updates_sent == 1
    assert len(await h.agreement.records()) == 1


async def test_an_agreement_not_signed_by_all_parties_is_never_created(make: Make) -> None:
    h = await make(nodes=2)
    assert h.plan is not None
    factory = await AgreementFactory.open(
        h.ledger, h.ledger.dev_signer(0), h.registry, artifacts=h.artifacts
    )
    terms = replace(h.agreement.terms, expiry=h.agreement.terms.expiry - 1)
    provider = PrivateKey(h.plan.parties[0].signer.private_key)
    before = await h.ledger.block_number()
    with pytest.raises(TransactionReverted):
        await factory.create(
            h.ledger.dev_signer(0),
            terms,
            [s.id for s in h.plan.sensors],
            [factory.sign_terms(provider, terms), factory.sign_terms(provider, terms)],
        )
    assert await h.ledger.block_number() == before, "nothing was mined"


async def test_a_stand_in_sends_the_update_when_the_designated_node_goes_silent(
    make: Make,
) -> None:
    h = await make(nodes=2)
    options = NodeSettings(gap_timeout=1.0, protocol_timeout=2.0, takeover_after=0.5)
    a, b = await h.node(0, options=options), await h.node(1, options=options)
    designated = a if h.agreement.terms.nodes[0] == a.address else b
    stand_in = b if designated is a else a

    class Silent:
        """The designated node's chain access is cut after it agreed."""

        async def recorded(self, round: int) -> bool:
            return False

        async def submit(self, transaction: object) -> Receipt:
            raise TransactionReverted("node offline")

        def already_recorded(self, error: TransactionReverted) -> bool:
            return False

        async def open_dispute(self, *args: object) -> Receipt:
            raise TransactionReverted("node offline")

    designated.submitter.port = Silent()  # type: ignore[assignment]
    async with running(a, b):
        await h.publish_month()
        await stand_in.wait_for(recorded(0), timeout=30)
    assert stand_in.stats.updates_sent == 1
    await assert_correct_record(h, stand_in)


async def test_a_silent_node_leads_to_a_timeout_dispute_not_a_hang(make: Make) -> None:
    h = await make(nodes=2)
    options = NodeSettings(gap_timeout=1.0, protocol_timeout=0.5, max_retries=1, takeover_after=1.0)
    a = await h.node(0, options=options)
    silent_inbox = node_inbox_topic(h.agreement.address, h.node_signers[1].address)
    listener = await h.client("svc:node.mute")
    await listener.subscribe(silent_inbox)
    async with running(a):
        await h.publish_month()
        await a.wait_for(disputed(0), timeout=30)
        await a.wait_for(lambda s: s.stats.disputes_sent == 1, timeout=30)
    assert [e.detail for e in a.events if e.kind == "disputed"] == ["TIMEOUT"]
    assert await dispute_kinds(h) == [DisputeKind.TIMEOUT]


async def test_a_party_fetches_a_stored_window_and_checks_it_against_the_chain(
    make: Make,
) -> None:
    h = await make(nodes=2)  # QoS: off-chain proof of storage
    a, b = await h.node(0), await h.node(1)
    auditor = await h.client("svc:auditor.insurer")
    insurer = PrivateKey(h.ledger.dev_signer(1).private_key)
    async with running(a, b):
        await h.publish_month()
        await b.wait_for(recorded(0), timeout=30)
        served = await fetch_window(auditor, insurer, b.agreement, b.address, 0)
        record = await h.agreement.record(0)
        assert record is not None and served.hash == record.window_hash
        outsider = PrivateKey(bytes([0x77]) * 32)
        with pytest.raises(TimeoutError):  # refused: the node answers nothing
            await fetch_window(auditor, outsider, b.agreement, b.address, 0, timeout=1)
        assert b.stats.window_requests_refused == {"NotAuthorised": 1}
        assert b.stats.windows_served == 1


async def test_without_proof_of_storage_a_node_answers_that_it_holds_no_window(
    make: Make,
) -> None:
    h = await make(nodes=2, qos=QoS.NO_PROOF)
    a, b = await h.node(0), await h.node(1)
    auditor = await h.client("svc:auditor.provider")
    provider = PrivateKey(h.ledger.dev_signer(0).private_key)
    async with running(a, b):
        await h.publish_month()
        await a.wait_for(recorded(0), timeout=30)
        with pytest.raises(NotFound, match="does not hold window 0"):
            await fetch_window(auditor, provider, a.agreement, a.address, 0)
