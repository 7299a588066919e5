"""The HTLC baseline: claim with the preimage before the timelock, refund only from it on.

Claims run on both backends; the refund needs the clock moved, which anvil allows.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pervasive.chain import Ledger
from pervasive.contracts.htlc import Htlc, LockState, hashlock, lock_id
from pervasive.errors import InvalidInput, NotFound, TransactionReverted

ANVIL = [pytest.param("anvil", marks=pytest.mark.anvil)]
AMOUNT = 10**17


async def _now(ledger: Ledger) -> int:
    return int((await ledger.w3.eth.get_block("latest"))["timestamp"])


async def _locked(ledger: Ledger, artifacts: Path, secret: bytes) -> tuple[Htlc, bytes]:
    htlc = await Htlc.open(ledger, ledger.dev_signer(1), artifacts=artifacts)
    recipient = ledger.dev_signer(2).address
    timelock = await _now(ledger) + 3600
    locked, receipt = await htlc.lock(recipient, hashlock(secret), timelock, amount=AMOUNT)
    # three packed slots: a baseline that wastes storage would flatter paper 003's scheme
    assert receipt.gas_used <= 93_000
    sender = ledger.dev_signer(1).address
    # the counterparty can compute the id before the lock is mined
    assert locked == lock_id(sender, recipient, hashlock(secret), timelock, AMOUNT)
    with pytest.raises(TransactionReverted, match="an identical lock exists"):
        await htlc.lock(recipient, hashlock(secret), timelock, amount=AMOUNT)
    return htlc, locked


async def test_the_right_preimage_claims_for_the_recipient(ledger: Ledger, artifacts: Path) -> None:
    secret = os.urandom(32)
    htlc, locked = await _locked(ledger, artifacts, secret)
    recipient = ledger.dev_signer(2).address
    before = await ledger.balance(recipient)
    # anyone holding the preimage may claim; the ether goes to the recipient
    receipt = await htlc.with_signer(ledger.dev_signer(3)).claim(locked, secret)
    assert await ledger.balance(recipient) == before + AMOUNT
    assert htlc.revealed_preimages(receipt) == [secret]
    assert receipt.gas_used <= 45_000
    assert (await htlc.get(locked)).state is LockState.CLAIMED
    with pytest.raises(TransactionReverted, match="no pending lock"):
        await htlc.claim(locked, secret)


async def test_a_wrong_preimage_is_refused(ledger: Ledger, artifacts: Path) -> None:
    secret = os.urandom(32)
    htlc, locked = await _locked(ledger, artifacts, secret)
    with pytest.raises(TransactionReverted, match="wrong preimage"):
        await htlc.claim(locked, bytes(32))
    with pytest.raises(TransactionReverted, match="the timelock has not passed"):
        await htlc.refund(locked)
    lock = await htlc.get(locked)
    assert (lock.state, lock.amount, lock.hashlock) == (LockState.PENDING, AMOUNT, hashlock(secret))
    assert await ledger.balance(htlc.address) == AMOUNT


async def test_bad_locks_are_refused(ledger: Ledger, artifacts: Path) -> None:
    htlc = await Htlc.open(ledger, ledger.dev_signer(1), artifacts=artifacts)
    recipient = ledger.dev_signer(2).address
    with pytest.raises(TransactionReverted, match="the timelock must be in the future"):
        await htlc.lock(recipient, hashlock(bytes(32)), await _now(ledger) - 1, amount=1)
    with pytest.raises(InvalidInput, match="positive"):
        await htlc.lock(recipient, hashlock(bytes(32)), await _now(ledger) + 60, amount=0)
    with pytest.raises(InvalidInput, match="32 bytes"):
        await htlc.lock(recipient, b"short", await _now(ledger) + 60, amount=1)
    with pytest.raises(NotFound):
        await htlc.get(bytes(32))


def test_hashlock_is_sha256() -> None:
    # FIPS 180-2 vector: SHA-256 of 32 zero bytes
    assert hashlock(bytes(32)).hex() == (
        "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
    )


@pytest.mark.parametrize("ledger", ANVIL, indirect=True)
async def test_refund_only_from_the_timelock_on(ledger: Ledger, artifacts: Path) -> None:
    secret = os.urandom(32)
    htlc, locked = await _locked(ledger, artifacts, secret)
    sender = ledger.dev_signer(1).address
    with pytest.raises(TransactionReverted, match="the timelock has not passed"):
        await htlc.refund(locked)
    await ledger.w3.provider.make_request("evm_increaseTime", [3600])
    await ledger.mine()
    with pytest.raises(TransactionReverted, match="the timelock has passed"):
        await htlc.claim(locked, secret)
    before = await ledger.balance(sender)
    receipt = await htlc.with_signer(ledger.dev_signer(4)).refund(locked)
    assert await ledger.balance(sender) == before + AMOUNT
    assert [e.name for e in htlc.contract.events(receipt)] == ["Refunded"]
    assert (await htlc.get(locked)).state is LockState.REFUNDED
    with pytest.raises(TransactionReverted, match="no pending lock"):
        await htlc.refund(locked)
