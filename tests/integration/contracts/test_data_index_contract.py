"""The data index on B_d: one post per payment and provider, with the event the notaries read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pervasive.chain import Ledger
from pervasive.contracts.data_index import DataIndex, IndexPosting
from pervasive.errors import InvalidInput, TransactionReverted


async def test_a_post_is_logged_once_per_payment(ledger: Ledger, artifacts: Path) -> None:
    index = await DataIndex.open(ledger, ledger.dev_signer(2), artifacts=artifacts)
    provider, consumer = ledger.dev_signer(2).address, ledger.dev_signer(1).address
    payment, ciphertext = os.urandom(32), os.urandom(300)
    assert await index.posted_block(payment, provider) == 0

    receipt = await index.post(payment, consumer, ciphertext)

    assert index.postings(receipt) == [
        IndexPosting(
            payment_id=payment,
            provider=provider,
            consumer=consumer,
            ciphertext=ciphertext,
            block_number=receipt.block_number,
            transaction_hash=receipt.transaction_hash,
        )
    ]
    assert await index.posted_block(payment, provider) == receipt.block_number
    with pytest.raises(TransactionReverted, match="already posted for this payment"):
        await index.post(payment, consumer, b"a second, different index")


async def test_someone_else_cannot_block_the_provider(ledger: Ledger, artifacts: Path) -> None:
    # a first-come key would let anyone front-run P with garbage and get P penalized
    index = await DataIndex.open(ledger, ledger.dev_signer(2), artifacts=artifacts)
    provider, consumer = ledger.dev_signer(2).address, ledger.dev_signer(1).address
    payment = os.urandom(32)
    await index.with_signer(ledger.dev_signer(3)).post(payment, consumer, b"garbage")
    assert await index.posted_block(payment, provider) == 0
    receipt = await index.post(payment, consumer, b"the real index")
    assert await index.posted_block(payment, provider) == receipt.block_number


async def test_bad_posts_are_refused(ledger: Ledger, artifacts: Path) -> None:
    index = await DataIndex.open(ledger, ledger.dev_signer(2), artifacts=artifacts)
    consumer = ledger.dev_signer(1).address
    with pytest.raises(InvalidInput, match="1 to 1024 bytes"):
        await index.post(os.urandom(32), consumer, bytes(1025))
    with pytest.raises(InvalidInput, match="payment id"):
        await index.post(bytes(32), consumer, b"x")
    with pytest.raises(TransactionReverted, match="the ciphertext is empty"):
        await index.contract.transact(ledger.dev_signer(2), "post", os.urandom(32), consumer, b"")
