"""Behaviour only a real node shows: stuck transactions, unreachable endpoints."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

import pytest
from chain_contract import deploy_counter

from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings
from pervasive.errors import ChainUnavailable


@pytest.mark.anvil
@pytest.mark.parametrize("ledger", ["anvil"], indirect=True)
async def test_stuck_transaction_is_replaced_and_mined_once(ledger: Ledger) -> None:
    manager = ledger.transactor(ledger.dev_signer(3))
    counter = await deploy_counter(manager)
    nonce = await ledger.nonce(manager.signer.address)
    ledger.options = replace(ledger.options, replace_after=0.3, receipt_timeout=20)
    await ledger.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    pending = await manager.send(counter.bump(7))
    waiting = asyncio.create_task(manager.wait(pending))
    for _ in range(100):
        if len(pending.hashes) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(pending.hashes) >= 2, "the manager did not replace the stuck transaction"
    assert not waiting.done()
    await ledger.mine(1)
    receipt = await asyncio.wait_for(waiting, 10)
    mined = [h for h in pending.hashes if await ledger.receipt(h) is not None]
    assert mined == [receipt.transaction_hash]
    assert receipt.transaction_hash != pending.hashes[0]  # the replacement won
    tx = await ledger.w3.eth.get_transaction(receipt.transaction_hash)  # type: ignore[arg-type]
    assert tx["nonce"] == nonce
    assert await ledger.nonce(manager.signer.address) == nonce + 1
    assert await counter.total() == 7  # applied once


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_rpc_url_is_chain_unavailable(tmp_settings: Settings) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ChainUnavailable, match=r"no Ethereum node answers at http://127\.0\.0\.1"):
        await open_ledger(replace(tmp_settings, backend="rpc", rpc_url=url))


@pytest.mark.anvil
async def test_node_gone_after_connecting_is_chain_unavailable(tmp_settings: Settings) -> None:
    ledger = await open_ledger(replace(tmp_settings, backend="anvil"), persist=False)
    url = ledger.url
    try:
        remote = await open_ledger(replace(tmp_settings, backend="rpc", rpc_url=url))
    finally:
        await ledger.close()  # stops the node
    try:
        with pytest.raises(ChainUnavailable, match="Is it running"):
            await remote.block_number()
    finally:
        await remote.close()
