"""A send whose connection drops: no transaction lost, none applied twice, no nonce gap."""

from __future__ import annotations

from dataclasses import replace

import pytest
from chain_contract import deploy_counter
from flaky_proxy import FlakyProxy

from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings
from pervasive.errors import ChainUnavailable

pytestmark = [pytest.mark.anvil, pytest.mark.parametrize("ledger", ["anvil"], indirect=True)]


async def _through(proxy: FlakyProxy, ledger: Ledger, settings: Settings) -> Ledger:
    remote = await open_ledger(
        replace(settings, backend="rpc", rpc_url=proxy.url, receipt_timeout=10)
    )
    assert remote.chain_id == ledger.chain_id
    return remote


async def test_lost_answer_is_resent_and_counted_once(
    ledger: Ledger, flaky_proxy: FlakyProxy, tmp_settings: Settings
) -> None:
    remote = await _through(flaky_proxy, ledger, tmp_settings)
    try:
        manager = remote.transactor(ledger.dev_signer(1))
        counter = await deploy_counter(manager)
        nonce = await remote.nonce(manager.signer.address)
        flaky_proxy.lose_answers = 1  # the node mines it, we never hear back
        receipt = await manager.transact(counter.bump(5))
        assert receipt.succeeded
        assert await counter.total() == 5
        assert await remote.nonce(manager.signer.address) == nonce + 1
        await manager.transact(counter.bump(1))
        assert await counter.total() == 6
    finally:
        await remote.close()


async def test_send_that_never_arrived_leaves_no_nonce_gap(
    ledger: Ledger, flaky_proxy: FlakyProxy, tmp_settings: Settings
) -> None:
    remote = await _through(flaky_proxy, ledger, tmp_settings)
    try:
        manager = remote.transactor(ledger.dev_signer(2))
        counter = await deploy_counter(manager)
        nonce = await remote.nonce(manager.signer.address)
        flaky_proxy.refuse_sends = True
        with pytest.raises(ChainUnavailable, match="may or may not have reached the node"):
            await manager.transact(counter.bump(5))
        flaky_proxy.refuse_sends = False
        # with the lost nonce kept, this one would wait behind a gap until the timeout
        await manager.transact(counter.bump(1))
        assert await counter.total() == 1
        assert await remote.nonce(manager.signer.address) == nonce + 1
    finally:
        await remote.close()


async def test_every_answer_lost_then_recovered(
    ledger: Ledger, flaky_proxy: FlakyProxy, tmp_settings: Settings
) -> None:
    remote = await _through(flaky_proxy, ledger, tmp_settings)
    try:
        manager = remote.transactor(ledger.dev_signer(3))
        counter = await deploy_counter(manager)
        nonce = await remote.nonce(manager.signer.address)
        flaky_proxy.lose_answers = 1000  # every re-send (ours and the HTTP client's) too
        with pytest.raises(ChainUnavailable):
            await manager.transact(counter.bump(5))
        flaky_proxy.lose_answers = 0
        await manager.transact(counter.bump(1))  # the nonce is re-read: no duplicate
        assert await counter.total() == 6  # the first one did reach the node
        assert await remote.nonce(manager.signer.address) == nonce + 2
    finally:
        await remote.close()


async def test_lost_batch_answer_is_resent_and_counted_once(
    ledger: Ledger, flaky_proxy: FlakyProxy, tmp_settings: Settings
) -> None:
    remote = await _through(flaky_proxy, ledger, tmp_settings)
    try:
        manager = remote.transactor(ledger.dev_signer(4))
        counter = await deploy_counter(manager)
        nonce = await remote.nonce(manager.signer.address)
        flaky_proxy.lose_answers = 2  # the node takes the first two batches, we hear nothing
        hashes = await manager.submit_many([counter.bump(1)] * 40, batch_size=10)
        assert len(set(hashes)) == 40
        await manager.wait_all(hashes)
        assert await counter.total() == 40
        assert await remote.nonce(manager.signer.address) == nonce + 40
    finally:
        await remote.close()
