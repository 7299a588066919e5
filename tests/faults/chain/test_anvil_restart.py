"""A restarted anvil keeps its chain: after a clean stop and after kill -9."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from chain_contract import deploy_counter

from pervasive.chain import AnvilNode, Signer, anvil_dev_keys, find_anvil, open_ledger
from pervasive.config import Settings

pytestmark = pytest.mark.anvil


async def test_clean_restart_keeps_the_chain(tmp_settings: Settings) -> None:
    settings = replace(tmp_settings, backend="anvil")
    ledger = await open_ledger(settings)  # persist=True: state in <home>/chain
    try:
        manager = ledger.transactor(ledger.dev_signer(0))
        counter = await deploy_counter(manager)
        await manager.transact(counter.bump(4))
        head = await ledger.block_number()
    finally:
        await ledger.close()
    assert settings.path("chain", "anvil-state.json").is_file()

    ledger = await open_ledger(settings)
    try:
        assert await ledger.block_number() >= head
        again = replace(counter, rpc=ledger.rpc)
        assert await again.total() == 4
        await ledger.transactor(ledger.dev_signer(0)).transact(again.bump(1))  # nonce carries on
        assert await again.total() == 5
    finally:
        await ledger.close()


async def test_kill_after_the_state_interval_keeps_the_chain(tmp_settings: Settings) -> None:
    state = tmp_settings.path("chain", "anvil-state.json")
    node = AnvilNode(binary=find_anvil(), state_file=state)
    await node.start()
    settings = replace(tmp_settings, backend="rpc", rpc_url=node.url)
    signer = Signer.from_key(anvil_dev_keys(1)[0])
    ledger = await open_ledger(settings)
    try:
        manager = ledger.transactor(signer)
        counter = await deploy_counter(manager)
        await manager.transact(counter.bump(9))
        await asyncio.sleep(2.5)  # anvil writes its state every second
    finally:
        await ledger.close()
    node.kill()  # SIGKILL: no chance to save on exit
    assert not node.running

    await node.start()  # same port, same state file
    ledger = await open_ledger(settings)
    try:
        again = replace(counter, rpc=ledger.rpc)
        assert await ledger.code(counter.address) != b""
        assert await again.total() == 9
        await ledger.transactor(signer).transact(again.bump(1))
        assert await again.total() == 10
    finally:
        await ledger.close()
        await node.stop()
