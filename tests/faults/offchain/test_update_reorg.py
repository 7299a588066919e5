"""A node's agreed update that a reorganisation removes is sent again and recorded once.

DIVERSITY (paper 002): once the nodes agree on window ``t`` the designated node sends
the update through the committee's exactly-once submitter. On anvil ``anvil_reorg``
replaces the block holding it with an empty one (not re-included; anvil forgets it).
The row becomes ``recorded`` only once the update is ``confirmations`` blocks deep, so
the node sends the same signed transaction again: the window ends with one record, the
reaction paid once. A stand-in that sees only a shallow record does not take it for done.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from anvil_control import anvil_call
from pervasive.chain import open_ledger
from pervasive.committee import SubmissionStatus, Submitter
from pervasive.config import Settings
from pervasive.crypto import PrivateKey, keccak256
from pervasive.domain import SignedUpdate, Update
from pervasive.offchain.node import ContractAgreementPort

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "offchain"))
from node_harness import RATE, Harness

pytestmark = pytest.mark.anvil

DEPTH = 2
UNITS = 7


@pytest.fixture
async def harness(tmp_path: Path, artifacts: Path) -> AsyncIterator[Harness]:
    ledger = await open_ledger(Settings(home=tmp_path / "chain", backend="anvil"), persist=False)
    world = await Harness.create(ledger, tmp_path / "world", artifacts, nodes=2)
    try:
        yield world
    finally:
        await world.close()
        await ledger.close()


def agreed_update(harness: Harness, t: int) -> SignedUpdate:
    """What the nodes sign once they agree on window ``t`` (``UNITS`` rental seconds)."""
    update = Update.for_window(
        harness.agreement.address, t, UNITS.to_bytes(32, "big"), keccak256(b"w[%d]" % t)
    )
    chain_id = harness.ledger.chain_id
    keys = [PrivateKey(s.private_key) for s in harness.node_signers]
    return SignedUpdate(update, tuple(update.sign(k, chain_id) for k in keys))


async def record_of(harness: Harness, t: int) -> bytes:
    return bytes(await harness.agreement.contract.call("record_of", t))


async def until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_an_update_reorganised_away_is_sent_again_and_recorded_once(
    harness: Harness, tmp_path: Path
) -> None:
    ledger, signer = harness.ledger, harness.node_signers[0]
    port = ContractAgreementPort(harness.agreement, signer, confirmations=DEPTH)
    submitter = Submitter(
        tmp_path / "node-0.sqlite", harness.agreement.address, port, SignedUpdate.decode,
        takeover_after=1.0,
    )  # fmt: skip
    signed = agreed_update(harness, 0)
    assert submitter.add(0, signed, designated=True, rank=0, now=time.time())
    sending = asyncio.create_task(submitter.run_due(time.time()))

    async def mined() -> bool:
        return await record_of(harness, 0) != bytes(32)

    await until(mined)
    (first,) = await harness.agreement.records()
    await asyncio.sleep(0.3)
    assert not sending.done()  # mined, but nothing on top of it yet
    row = submitter.get(0)
    assert row is not None and row.status is SubmissionStatus.SENDING

    await anvil_call(ledger, "anvil_reorg", [1, []])  # its block replaced by an empty one
    assert not await mined()
    while not sending.done():  # blocks keep coming, without the update unless re-sent
        await ledger.mine(1)
        await asyncio.sleep(0.1)

    (receipt,) = await sending
    assert receipt.transaction_hash == first.transaction_hash  # the same signed bytes
    assert await ledger.block_number() >= receipt.block_number + DEPTH
    records = await harness.agreement.records()
    assert [r.window for r in records] == [0] and records[
        0
    ].transaction_hash == first.transaction_hash
    row = submitter.get(0)
    assert row is not None and row.status is SubmissionStatus.RECORDED
    assert row.tx_hash == first.transaction_hash and submitter.sent == 1
    assert port.reorganised == {"resent": 1}
    # the reaction ran once: UNITS seconds at RATE credited to the insurer, no more
    payee = ledger.dev_signer(1).address
    balance = await harness.agreement.contract.call("credit", payee)
    assert balance == UNITS * RATE


async def test_a_stand_in_waits_for_a_deep_record(harness: Harness) -> None:
    ledger = harness.ledger
    designated = ContractAgreementPort(harness.agreement, harness.node_signers[0])
    stand_in = ContractAgreementPort(
        harness.agreement, harness.node_signers[1], confirmations=DEPTH
    )
    await designated.submit(agreed_update(harness, 1))  # shallow: one block, nothing on top
    assert await record_of(harness, 1) != bytes(32)
    assert not await stand_in.recorded(1)
    await ledger.mine(DEPTH)
    assert await stand_in.recorded(1)
