"""The transaction manager on both backends: deploy, call, transact, reverts, nonces."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from chain_contract import BUMPED, Counter

from pervasive.chain import (
    ContractCall,
    Ledger,
    TransactionManager,
    TransactionRefused,
)
from pervasive.errors import TransactionReverted


async def test_deploy_call_and_transact(
    ledger: Ledger, manager: TransactionManager, counter: Counter
) -> None:
    assert await ledger.code(counter.address) != b""
    assert await counter.total() == 0
    receipt = await manager.transact(counter.bump(5))
    assert receipt.succeeded and receipt.gas_used > 21_000
    assert await counter.total() == 5
    (log,) = receipt.logs
    assert log.topics[0] == BUMPED and Counter.bumped(log) == (5, 5)
    assert log.topics[1][-20:] == bytes.fromhex(manager.signer.address[2:])
    logs = await ledger.logs(counter.address, 0, await ledger.block_number())
    assert logs == [log]


async def test_eip1559_fees_and_gas_margin(
    ledger: Ledger, manager: TransactionManager, counter: Counter
) -> None:
    estimate = await ledger.estimate_gas(
        manager.signer.address, counter.address, counter.bump(1).data
    )
    pending = await manager.send(counter.bump(1))
    assert len(pending.hashes) == 1
    receipt = await manager.wait(pending)
    assert receipt.transaction_hash == pending.hashes[0]
    tx = await ledger.w3.eth.get_transaction(receipt.transaction_hash)  # type: ignore[arg-type]
    assert tx["type"] == 2
    assert tx["gas"] == pytest.approx(estimate * ledger.options.gas_margin, abs=1)
    assert tx["maxFeePerGas"] >= tx["maxPriorityFeePerGas"] > 0
    assert receipt.gas_used <= tx["gas"]


async def test_revert_at_estimate_carries_reason_and_uses_no_nonce(
    ledger: Ledger, manager: TransactionManager, counter: Counter
) -> None:
    nonce = await ledger.nonce(manager.signer.address)
    with pytest.raises(TransactionReverted) as caught:
        await manager.transact(counter.bump(0))
    assert caught.value.reason == "zero bump"
    assert caught.value.tx_hash is None  # nothing was sent
    assert await ledger.nonce(manager.signer.address) == nonce
    await manager.transact(counter.bump(2))
    assert await ledger.nonce(manager.signer.address) == nonce + 1


async def test_mined_revert_carries_reason_and_hash(
    ledger: Ledger, manager: TransactionManager, counter: Counter
) -> None:
    with pytest.raises(TransactionReverted) as caught:
        await manager.transact(counter.bump(0, gas=100_000))  # no estimate: it is mined
    assert caught.value.reason == "zero bump"
    assert caught.value.tx_hash is not None
    receipt = await ledger.receipt(caught.value.tx_hash)
    assert receipt is not None and receipt.status == 0
    await manager.transact(counter.bump(1))  # the nonce moved on
    assert await counter.total() == 1


async def test_revert_without_reason_and_eth_call_revert(
    ledger: Ledger, manager: TransactionManager, counter: Counter
) -> None:
    with pytest.raises(TransactionReverted) as caught:
        await manager.transact(counter.bump(13))
    assert caught.value.reason is None
    with pytest.raises(TransactionReverted, match="zero bump") as called:
        await ledger.call(counter.address, counter.bump(0).data)
    assert called.value.reason == "zero bump"


async def test_refused_send_recovers_the_nonce(
    ledger: Ledger, manager: TransactionManager, counter: Counter
) -> None:
    nonce = await ledger.nonce(manager.signer.address)
    too_much = await ledger.balance(manager.signer.address) * 2
    with pytest.raises(TransactionRefused) as caught:
        await manager.transact(
            ContractCall(to=counter.address, data=b"", value=too_much, gas=30_000)
        )
    assert "fund" in caught.value.message.lower() or "balance" in caught.value.message.lower()
    # were the refused nonce kept, this transaction would wait for ever behind a gap
    ledger.options = replace(ledger.options, receipt_timeout=10)
    receipt = await manager.transact(counter.bump(3))
    assert receipt.succeeded
    assert await ledger.nonce(manager.signer.address) == nonce + 1


async def test_insufficient_funds_at_estimate_is_refused(
    ledger: Ledger, manager: TransactionManager, counter: Counter
) -> None:
    too_much = await ledger.balance(manager.signer.address) * 2
    with pytest.raises(TransactionRefused):
        await manager.transact(ContractCall(to=manager.signer.address, data=b"", value=too_much))


async def test_concurrent_transactions_get_distinct_nonces(
    ledger: Ledger, manager: TransactionManager, counter: Counter
) -> None:
    nonce = await ledger.nonce(manager.signer.address)
    receipts = await asyncio.gather(*(manager.transact(counter.bump(1)) for _ in range(8)))
    assert len({r.transaction_hash for r in receipts}) == 8
    assert await counter.total() == 8
    assert await ledger.nonce(manager.signer.address) == nonce + 8


async def test_submit_many_and_wait_all(
    ledger: Ledger, manager: TransactionManager, counter: Counter
) -> None:
    nonce = await ledger.nonce(manager.signer.address)
    hashes = await manager.submit_many([counter.bump(2)] * 30, batch_size=7)
    receipts = await manager.wait_all(hashes)
    assert [r.transaction_hash for r in receipts] == hashes
    assert all(r.succeeded for r in receipts)
    assert await counter.total() == 60
    assert await ledger.nonce(manager.signer.address) == nonce + 30


async def test_wait_all_raises_on_a_mined_revert(
    manager: TransactionManager, counter: Counter
) -> None:
    hashes = await manager.submit_many(
        [counter.bump(1), counter.bump(0), counter.bump(1)], gas=100_000
    )
    with pytest.raises(TransactionReverted, match="zero bump"):
        await manager.wait_all(hashes)
    assert await counter.total() == 2


async def test_confirmations_wait_for_blocks_on_top(
    ledger: Ledger, manager: TransactionManager, counter: Counter
) -> None:
    ledger.options = replace(ledger.options, confirmations=2)
    task = asyncio.create_task(manager.transact(counter.bump(1)))
    await asyncio.sleep(0.5)
    assert not task.done()  # mined, but not 2 blocks deep
    await ledger.mine(2)
    receipt = await asyncio.wait_for(task, 10)
    assert await ledger.block_number() >= receipt.block_number + 2
    assert await counter.total() == 1


async def test_each_signer_has_its_own_manager(ledger: Ledger) -> None:
    alice, bob = ledger.dev_signer(1), ledger.dev_signer(2)
    assert ledger.transactor(alice) is ledger.transactor(alice)
    assert ledger.transactor(alice) is not ledger.transactor(bob)
    before = await ledger.balance(bob.address)
    await ledger.transactor(alice).transact(ContractCall(to=bob.address, data=b"", value=10**18))
    assert await ledger.balance(bob.address) == before + 10**18
