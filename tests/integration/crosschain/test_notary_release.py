"""Deposits come back only at the end of the period, under a threshold signature (paper 003, V-A).

C_sp releases a deposit only with a signature under the committee's group key over
``release_message``; members give their partials only once the period has ended and
no challenge touching the account is open; the owner combines ``t`` of them.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from crosschain_harness import open_world

from pervasive.crosschain.errors import DepositInsufficient
from pervasive.crosschain.notary_routes import collect_release
from pervasive.errors import TransactionReverted

pytestmark = pytest.mark.anvil

PERIOD = 20
"""Seconds from the committee file to the end of the deposit period."""


async def test_a_deposit_is_released_once_after_the_period_and_never_before(
    tmp_path: Path, artifacts: Path
) -> None:
    async with open_world(tmp_path, artifacts, period=PERIOD) as w:
        owner = w.consumer_signer
        urls = w.committee.urls
        deposit = await w.notary.deposit_of(owner.address)
        assert deposit > 0
        with pytest.raises(DepositInsufficient, match="period"):
            await collect_release(w.session, urls, owner.address, threshold=3)
        async with w.session.post(f"{urls[0]}/release", json={"nope": 1}) as reply:
            assert reply.status == 400  # a malformed request, counted
        assert w.committee.members[0].server is not None
        assert w.committee.members[0].server.rejections["bad_release"] == 1

        await asyncio.sleep(max(0.0, w.committee.spec.period_end - time.time() + 1.5))
        await w.user_ledger.mine(1)  # a block after the period: the contract's clock
        amount, signature = await collect_release(w.session, urls, owner.address, threshold=3)
        assert amount == deposit
        balance = await w.user_ledger.balance(owner.address)
        receipt = await w.notary.with_signer(owner).release(owner.address, amount, signature)
        assert await w.notary.deposit_of(owner.address) == 0
        assert await w.user_ledger.balance(owner.address) == balance + amount - receipt.fee
        with pytest.raises(TransactionReverted):  # the same release again: nothing left
            await w.notary.with_signer(owner).release(owner.address, amount, signature)
        with pytest.raises(DepositInsufficient, match="empty"):
            await collect_release(w.session, urls, owner.address, threshold=3)
