"""Notary committee faults on real chains (paper 003, V-C): crashes, absence, collusion, replay.

One world (two anvil chains, 4 members, t = 3) for the module; the tests run in order and
each starts again the members it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from crosschain_harness import (
    WINDOW,
    deposits,
    restart_member,
    status,
    stop_member,
    submit,
    undelivered_challenge,
    wait_settled,
)

from pervasive.apps.dataexchange.world import ExchangeWorld
from pervasive.contracts.notary import penalty_message
from pervasive.crosschain.signing import SigningRequest, SQLiteSignatureJournal
from pervasive.crypto import bls_sign, combine_signatures
from pervasive.errors import ReplayedMessage, TransactionReverted

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("notary-faults"),
]

SETTLE = WINDOW + 40  # the deadline, then up to three 5 s submitter take-overs


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def restarts(evm_world: ExchangeWorld) -> AsyncIterator[contextlib.AsyncExitStack]:
    """Where restarted members live until the module ends (closed before the world)."""
    async with contextlib.AsyncExitStack() as stack:
        yield stack


async def test_t_minus_1_colluding_members_cannot_produce_a_valid_penalty(
    evm_world: ExchangeWorld,
) -> None:
    w = evm_world
    colluders = w.committee.members[:2]  # t - 1 = 2 members pool their share secrets
    shares = {}
    for m in colluders:
        record = m.state.key()
        assert record is not None
        shares[record.result.index] = record.result.share
    thief = w.user_ledger.dev_signer(7).address
    c_deposit, p_deposit = await deposits(w)
    fake_id = secrets.token_bytes(32)
    message = penalty_message(
        w.user_ledger.chain_id, w.notary.address, fake_id, w.consumer_signer.address,
        thief, c_deposit,
    )  # fmt: skip
    partials = {i: bls_sign(s, message) for i, s in shares.items()}
    attempts = [combine_signatures(partials), *partials.values()]
    sender = w.notary.with_signer(w.user_ledger.dev_signer(7))
    for signature in attempts:
        with pytest.raises(TransactionReverted, match="invalid notary signature"):
            await sender.penalize(fake_id, w.consumer_signer.address, thief, c_deposit, signature)
    assert await deposits(w) == (c_deposit, p_deposit)
    assert not await w.notary.is_settled(fake_id)


async def test_one_member_offline_does_not_stop_a_penalty(
    evm_world: ExchangeWorld, restarts: contextlib.AsyncExitStack
) -> None:
    w = evm_world
    await stop_member(w, 4)
    try:
        challenge, required = await undelivered_challenge(w)
        c_deposit, p_deposit = await deposits(w)
        code, _ = await submit(w, 1, challenge)
        assert code == 202
        await wait_settled(w, challenge, timeout=SETTLE)  # 3 of 4 signed
        assert await deposits(w) == (c_deposit, p_deposit - required)
    finally:
        await restart_member(w, 4, restarts)
    await w.committee.members[3].wait_ready(30)


async def test_a_member_killed_after_signing_resumes_with_the_same_partial(
    evm_world: ExchangeWorld, restarts: contextlib.AsyncExitStack
) -> None:
    w = evm_world
    members = w.committee.members
    challenge, required = await undelivered_challenge(w)  # C pays (t members attest)
    await stop_member(w, 3)
    await stop_member(w, 4)  # only members 1 and 2 serve: 2 < t partials, no penalty yet
    c_deposit, p_deposit = await deposits(w)
    signed = [m.stats.penalties_signed for m in members[:2]]
    code, _ = await submit(w, 1, challenge)
    assert code == 202
    async with asyncio.timeout(WINDOW + 15):
        while members[1].stats.penalties_signed == signed[1]:
            await asyncio.sleep(0.1)
    first = SQLiteSignatureJournal(members[1]._db).load(challenge.id)
    assert first is not None
    assert not await w.notary.is_settled(challenge.id)
    # member 2 is killed after its partial went out, and started again on its file
    m2 = await restart_member(w, 2, restarts)
    await m2.wait_ready(30)
    assert m2.signer_bls is not None
    # a third member comes back and is told about the challenge: t partials exist
    m3 = await restart_member(w, 3, restarts)
    await m3.wait_ready(30)
    code, _ = await submit(w, 3, challenge)
    assert code == 202
    await wait_settled(w, challenge, timeout=SETTLE)
    assert await deposits(w) == (c_deposit, p_deposit - required)
    # the restarted member holds the very partial it gave before, for the settled message
    assert SQLiteSignatureJournal(m2._db).load(challenge.id) == first
    settled_message = penalty_message(
        w.user_ledger.chain_id, w.notary.address, challenge.id, w.provider.address,
        w.consumer_signer.address, required,
    )  # fmt: skip
    assert first[0] == settled_message
    # and it refuses to sign anything else under that challenge
    with pytest.raises(ReplayedMessage):
        m2.signer_bls.sign(SigningRequest(challenge.id, secrets.token_bytes(32)))
    assert m2.signer_bls.refused["conflicting_request"] == 1
    code, body = await status(w, 2, "0x" + challenge.id.hex())
    assert code == 200 and body["settled"] is True
    m4 = await restart_member(w, 4, restarts)
    await m4.wait_ready(30)


async def test_members_restarted_after_signing_still_complete_the_penalty(
    evm_world: ExchangeWorld, restarts: contextlib.AsyncExitStack
) -> None:
    """Members 1 and 2 sign, both restart; member 3 comes back having missed their partials.

    Only if the restarted members send their journaled partials again can anyone reach
    t = 3: three honest members agree and the penalty must not stall.
    """
    w = evm_world
    members = w.committee.members
    challenge, required = await undelivered_challenge(w)
    await stop_member(w, 3)
    await stop_member(w, 4)
    c_deposit, p_deposit = await deposits(w)
    signed = [m.stats.penalties_signed for m in members[:2]]
    code, _ = await submit(w, 1, challenge)
    assert code == 202
    async with asyncio.timeout(WINDOW + 15):
        while any(m.stats.penalties_signed == s for m, s in zip(members[:2], signed, strict=True)):
            await asyncio.sleep(0.1)
    journaled = [SQLiteSignatureJournal(m._db).load(challenge.id) for m in members[:2]]
    for index in (1, 2):  # a power cut takes both down after they signed
        await (await restart_member(w, index, restarts)).wait_ready(30)
    m3 = await restart_member(w, 3, restarts, keep_session=False)  # it missed their partials
    await m3.wait_ready(30)
    code, _ = await submit(w, 3, challenge)
    assert code == 202
    await wait_settled(w, challenge, timeout=SETTLE)
    assert await deposits(w) == (c_deposit, p_deposit - required)
    after = [SQLiteSignatureJournal(m._db).load(challenge.id) for m in w.committee.members[:2]]
    assert after == journaled  # the same partials, never a second message
    await (await restart_member(w, 4, restarts)).wait_ready(30)


async def test_a_replayed_penalty_is_refused_as_already_settled(
    evm_world: ExchangeWorld,
) -> None:
    w = evm_world
    challenge, required = await undelivered_challenge(w)
    code, _ = await submit(w, 1, challenge)
    assert code == 202
    await wait_settled(w, challenge, timeout=SETTLE)
    signature = None
    async with asyncio.timeout(10):
        while signature is None:
            for m in w.committee.members:
                if m.signer_bls is not None and signature is None:
                    signature = m.signer_bls.signature(challenge.id)
            await asyncio.sleep(0.1)
    before = await deposits(w)
    c_balance = await w.user_ledger.balance(w.consumer_signer.address)
    replayer = w.notary.with_signer(w.user_ledger.dev_signer(7))
    with pytest.raises(TransactionReverted, match="challenge already settled"):
        await replayer.penalize(
            challenge.id, w.provider.address, w.consumer_signer.address, required, signature
        )
    assert await deposits(w) == before
    assert await w.user_ledger.balance(w.consumer_signer.address) == c_balance
