"""Agreement creation, updates and reactions on the embedded EVM and on anvil."""

from __future__ import annotations

from dataclasses import replace

import pytest
from agreement_world import World

from pervasive.contracts import Agreement, compact_signature
from pervasive.crypto import PrivateKey, Signature, keccak256
from pervasive.domain import QoS, Reaction, ReactionKind, SigningMode, Update
from pervasive.errors import InvalidInput, TransactionReverted

WINDOW_HASH = keccak256(b"w[t]")
PROOFS_HASH = keccak256(b"P_t")


def word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def signed(world: World, agreement: Agreement, payload: Update) -> list[Signature]:
    return [payload.sign(world.key(n), world.ledger.chain_id) for n in world.nodes]


async def send_raw_update(
    world: World, agreement: Agreement, payload: Update, sigs: list[Signature]
) -> None:
    """Bypass the wrapper's checks so the contract itself must refuse."""
    args = (payload.window, payload.result, payload.window_hash, payload.proofs_hash)
    await agreement.contract.transact(
        world.nodes[0], "update", *args, [compact_signature(s) for s in sigs]
    )


async def test_creation_needs_every_party_and_registered_entities(world: World) -> None:
    terms = world.terms()
    approvals = world.approvals(terms)
    with pytest.raises(InvalidInput, match="every party"):
        await world.factory.create(world.deployer, terms, ["lock-1"], approvals[:1])
    outsider = PrivateKey(bytes.fromhex("77" * 32))
    forged = [approvals[0], world.factory.sign_terms(outsider, terms)]
    with pytest.raises(TransactionReverted, match="signature of the terms"):
        await world.factory.create(world.deployer, terms, ["lock-1"], forged)
    stranger = world.terms(nodes=(world.nodes[0].address, outsider.address))
    with pytest.raises(TransactionReverted, match="not an active registered intermediate node"):
        await world.factory.create(world.deployer, stranger, ["lock-1"], world.approvals(stranger))

    agreement = await world.factory.create(world.deployer, terms, ["lock-1"], approvals)
    assert agreement.terms == terms
    chain_digest = await agreement.terms_digest()
    assert chain_digest == terms.typed_hash(world.ledger.chain_id, world.factory.address).digest
    assert await world.registry.contract.call("is_agreement", agreement.address)
    with pytest.raises(TransactionReverted, match="already created"):
        await world.factory.create(world.deployer, terms, ["lock-1"], approvals)


async def test_update_is_recorded_once_under_60k_gas(world: World) -> None:
    agreement = await world.agreement()
    payload = agreement.update_payload(0, word(1234), WINDOW_HASH, proofs_hash=PROOFS_HASH)
    receipt = await agreement.update(world.nodes[0], payload, signed(world, agreement, payload))
    assert receipt.gas_used <= 60_000
    record = await agreement.record(0)
    assert record is not None
    assert (record.result, record.window_hash, record.proofs_hash) == (
        word(1234),
        WINDOW_HASH,
        PROOFS_HASH,
    )
    assert record.commitment == payload.struct_hash()
    again = agreement.update_payload(0, word(99), WINDOW_HASH, proofs_hash=PROOFS_HASH)
    with pytest.raises(TransactionReverted, match="window already updated"):
        await agreement.update(world.nodes[1], again, signed(world, agreement, again))
    assert (await agreement.record(0)) == record


async def test_missing_forged_reordered_or_foreign_signatures_are_refused(world: World) -> None:
    agreement = await world.agreement()
    payload = agreement.update_payload(3, word(7), WINDOW_HASH)
    good = signed(world, agreement, payload)
    with pytest.raises(InvalidInput, match="one signature per node"):
        await agreement.update(world.nodes[0], payload, good[:1])
    with pytest.raises(TransactionReverted, match="one signature per node"):
        await send_raw_update(world, agreement, payload, good[:1])
    forger = PrivateKey(bytes.fromhex("66" * 32))
    party = world.key(world.parties[0])
    other = agreement.update_payload(3, word(8), WINDOW_HASH)
    for bad in (
        [good[0], payload.sign(forger, world.ledger.chain_id)],  # forged
        [good[1], good[0]],  # reordered
        [good[0], payload.sign(party, world.ledger.chain_id)],  # a party, not a node
        [good[0], signed(world, agreement, other)[1]],  # signed another result
    ):
        with pytest.raises(TransactionReverted, match="not by its node"):
            await agreement.update(world.nodes[0], payload, bad)
    assert await agreement.record(3) is None


async def test_null_result_writes_nothing(world: World) -> None:
    agreement = await world.agreement(reaction=Reaction(ReactionKind.PAY_FIXED, 0, 1, 50))
    await agreement.deposit(world.parties[0], 1_000)
    payload = agreement.update_payload(5, None, WINDOW_HASH)
    receipt = await agreement.update(world.nodes[0], payload, signed(world, agreement, payload))
    assert receipt.logs == ()
    assert await agreement.record(5) is None
    assert await agreement.escrow_of(world.parties[0].address) == 1_000
    assert await agreement.records() == []


async def test_pay_per_unit_reaction_pays_from_escrow_and_keeps_arrears(world: World) -> None:
    payer, payee = world.parties
    agreement = await world.agreement(reaction=Reaction(ReactionKind.PAY_PER_UNIT, 0, 1, 10))
    await agreement.deposit(payer, 1_000)
    for t, units in ((0, 7), (1, 500)):
        payload = agreement.update_payload(t, word(units) + b"month", WINDOW_HASH)
        await agreement.update(world.nodes[0], payload, signed(world, agreement, payload))
    assert await agreement.escrow_of(payer.address) == 0
    assert await agreement.credit_of(payee.address) == 1_000
    assert await agreement.arrears() == 5_070 - 1_000
    await agreement.deposit(payer, 5_000)  # settles the arrears first
    assert await agreement.arrears() == 0
    assert await agreement.credit_of(payee.address) == 5_070
    assert await agreement.escrow_of(payer.address) == 930
    before = await world.ledger.balance(payee.address)
    receipt = await agreement.withdraw(payee)
    spent = receipt.gas_used * receipt.effective_gas_price
    assert await world.ledger.balance(payee.address) == before + 5_070 - spent
    with pytest.raises(TransactionReverted, match="nothing to withdraw"):
        await agreement.withdraw(payee)


async def test_nodes_claim_rewards_from_their_trusting_party(world: World) -> None:
    agreement = await world.agreement(reward=300)
    for party in world.parties:
        await agreement.deposit(party, 1_000)
    for t in (0, 2):
        payload = agreement.update_payload(t, word(t + 1), WINDOW_HASH)
        await agreement.update(world.nodes[1], payload, signed(world, agreement, payload))
    node = world.nodes[0]
    assert await agreement.unclaimed_windows(node.address) == [0, 2]
    with pytest.raises(TransactionReverted, match="has no record"):
        await agreement.claim_reward(node, node.address, [1])
    await agreement.claim_reward(world.deployer, node.address)
    assert await agreement.credit_of(node.address) == 600
    assert await agreement.escrow_of(world.parties[0].address) == 400
    assert await agreement.escrow_of(world.parties[1].address) == 1_000
    with pytest.raises(TransactionReverted, match="follow the last claimed"):
        await agreement.claim_reward(node, node.address, [2])
    await agreement.withdraw(node)
    assert await agreement.credit_of(node.address) == 0


async def test_emit_reaction_logs_an_actuation(world: World) -> None:
    agreement = await world.agreement(reaction=Reaction(ReactionKind.EMIT))
    payload = agreement.update_payload(1, b"unlock", WINDOW_HASH)
    receipt = await agreement.update(world.nodes[0], payload, signed(world, agreement, payload))
    [event] = agreement.contract.events(receipt, "Actuation")
    assert event.args["command"] == b"unlock"
    assert event.args["window"] == 1


async def test_only_parties_deposit(world: World) -> None:
    agreement = await world.agreement(qos=QoS.OFFCHAIN_PROOF)
    with pytest.raises(TransactionReverted, match="only a party"):
        await agreement.deposit(world.nodes[0], 10)


async def test_the_signing_mode_and_leader_are_terms_every_party_signs(world: World) -> None:
    rotating = await world.agreement(signing=SigningMode.FAST, leader=None)
    assert (rotating.terms.signing, rotating.terms.leader) == (SigningMode.FAST, None)
    static = await world.agreement(signing=SigningMode.LEADER, leader=1)
    assert (static.terms.signing, static.terms.leader) == (SigningMode.LEADER, 1)
    assert static.terms.as_abi()[-2:] == (1, 1)
    # a leader that is not a node: refused by the wrapper and, signed anyway, by the contract
    with pytest.raises(InvalidInput, match="not a node index"):
        world.terms(leader=2)
    forged = replace(world.terms(), leader=0)
    object.__setattr__(forged, "leader", 7)  # past the wrapper's own check
    with pytest.raises(TransactionReverted, match="the leader must be a node index"):
        await world.factory.create(world.deployer, forged, ["lock-1"], world.approvals(forged))
