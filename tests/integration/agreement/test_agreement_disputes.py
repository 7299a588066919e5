"""Disputes with signed evidence, and on-chain proof of storage, on embedded and anvil."""

from __future__ import annotations

import pytest
from agreement_world import World

from pervasive.contracts import Agreement, ProofEvidence, RevealEvidence
from pervasive.crypto import PrivateKey, keccak256, sign_typed_data
from pervasive.domain import QoS
from pervasive.errors import InvalidInput, TransactionReverted
from pervasive.offchain import ProofOfComputation, Reveal, commitment
from pervasive.offchain.window_data import PackedMessage, SensorWindowData, WindowData
from pervasive.sensing import SensorDeclaration
from pervasive.sensing.message import sign_sensor_message

SECRET = bytes(range(32))


def proof(
    world: World, agreement: Agreement, node: int, t: int, window_hash: bytes
) -> ProofEvidence:
    key = world.key(world.nodes[node])
    made = ProofOfComputation(
        commitment(b"42", SECRET, key.address), t, agreement.address, window_hash
    )
    signature = sign_typed_data(key, made.typed_hash(agreement.domain_separator))
    return ProofEvidence(node, made.commitment, window_hash, signature)


def reveal(
    world: World,
    agreement: Agreement,
    node: int,
    t: int,
    result: bytes | None,
    key: PrivateKey | None = None,
) -> RevealEvidence:
    signer = key or world.key(world.nodes[node])
    made = Reveal(agreement.address, t, result, SECRET)
    signature = sign_typed_data(signer, made.typed_hash(agreement.domain_separator))
    return RevealEvidence(node, result, SECRET, signature)


async def test_window_hash_dispute_is_recorded_and_readable(world: World) -> None:
    agreement = await world.agreement()
    evidence = [
        proof(world, agreement, 0, 4, keccak256(b"window seen by node 0")),
        proof(world, agreement, 1, 4, keccak256(b"window seen by node 1")),
    ]
    await agreement.dispute(world.nodes[1], 4, 1, proofs=evidence)
    [recorded] = await agreement.disputes()
    assert (recorded.window, recorded.kind, recorded.opener) == (4, 1, world.nodes[1].address)
    assert recorded.proofs == tuple(evidence)
    assert await agreement.dispute_count() == 1


async def test_result_and_bad_reveal_disputes(world: World) -> None:
    agreement = await world.agreement()
    reveals = [reveal(world, agreement, 0, 2, b"42"), reveal(world, agreement, 1, 2, None)]
    await agreement.dispute(world.nodes[0], 2, 2, reveals=reveals)
    # node 1 committed to "42" but reveals "41": its reveal does not open its commitment
    lying = [proof(world, agreement, 1, 2, keccak256(b"w"))]
    await agreement.dispute(
        world.nodes[0], 2, 3, proofs=lying, reveals=[reveal(world, agreement, 1, 2, b"41")]
    )
    kinds = [(d.kind, d.reveals) for d in await agreement.disputes()]
    assert kinds[0] == (2, tuple(reveals))
    assert kinds[1][0] == 3


async def test_forged_or_empty_evidence_is_refused(world: World) -> None:
    agreement = await world.agreement()
    outsider = PrivateKey(bytes.fromhex("55" * 32))
    forged = [reveal(world, agreement, 0, 2, b"42"), reveal(world, agreement, 1, 2, b"7", outsider)]
    with pytest.raises(TransactionReverted, match="reveal in the evidence is not signed"):
        await agreement.dispute(world.nodes[0], 2, 2, reveals=forged)
    same = [proof(world, agreement, i, 4, keccak256(b"same")) for i in (0, 1)]
    with pytest.raises(TransactionReverted, match="does not show the disagreement"):
        await agreement.dispute(world.nodes[0], 4, 1, proofs=same)
    wrong_window = [proof(world, agreement, 0, 5, keccak256(b"a")), same[1]]
    with pytest.raises(TransactionReverted, match="proof of computation in the evidence"):
        await agreement.dispute(world.nodes[0], 4, 1, proofs=wrong_window)
    with pytest.raises(TransactionReverted, match="not a node"):
        await agreement.dispute(world.parties[0], 4, 4)
    assert await agreement.disputes() == []


async def test_a_claim_without_evidence_is_accepted_once_per_node_and_window(
    world: World,
) -> None:
    agreement = await world.agreement()
    timeout = 4  # a silent peer: there is no evidence of an absence, only the claim
    await agreement.dispute(world.nodes[0], 3, timeout)
    with pytest.raises(TransactionReverted, match="already opened a dispute of this kind"):
        await agreement.dispute(world.nodes[0], 3, timeout)
    await agreement.dispute(world.nodes[1], 3, timeout)  # the other node may claim it too
    await agreement.dispute(world.nodes[0], 4, timeout)  # and a later window is a new claim
    recorded = [(d.window, d.kind, d.opener) for d in await agreement.disputes()]
    assert recorded == [
        (3, timeout, world.nodes[0].address),
        (3, timeout, world.nodes[1].address),
        (4, timeout, world.nodes[0].address),
    ]


def lock_window(world: World, start: int, count: int) -> WindowData:
    declaration = SensorDeclaration.create(
        world.sensor.public_key, "lock", [("unlocked", "bool"), ("time", "uint64")]
    )
    messages = [
        sign_sensor_message(world.sensor, declaration, q, [q % 2 == 0, 1_700_000_000 + 60 * q])
        for q in range(start, start + count)
    ]
    packed = tuple(PackedMessage(m.values, m.signature.to_bytes()) for m in messages)
    sensor = SensorWindowData(
        world.sensor.public_key.to_bytes(), "lock", ("bool", "uint64"), start, packed
    )
    return WindowData((sensor,))


async def test_onchain_qos_checks_the_data_hash(world: World) -> None:
    agreement = await world.agreement(qos=QoS.ONCHAIN_PROOF)
    window = lock_window(world, 0, 20)
    data = window.encode()
    payload = agreement.update_payload(0, b"\x00" * 31 + b"\x09", window.hash, data=data)
    signatures = [payload.sign(world.key(n), world.ledger.chain_id) for n in world.nodes]
    with pytest.raises(InvalidInput, match="packed window data"):
        await agreement.update(world.nodes[0], payload, signatures)
    other = lock_window(world, 20, 20).encode()
    with pytest.raises(TransactionReverted, match="not by its node"):
        await agreement.update(world.nodes[0], payload, signatures, data=other)
    await agreement.update(world.nodes[0], payload, signatures, data=data)
    record = await agreement.record(0)
    assert record is not None and record.data_hash == keccak256(data)
    assert record.window_hash == WindowData.decode(data).hash
