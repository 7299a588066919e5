"""Two EVM chains side by side with different chain ids: B_u and B_d of paper 003.

``open_ledger(..., chain_id=...)`` gives the embedded chain (py-evm) and anvil an EIP-155
id of our choosing, so the user chain and the data chain of one deployment can both run
locally. What must hold: each node reports its own id (``eth_chainId`` and the CHAINID
opcode), a transaction signed for one is refused by the other, and a proof from one
chain does not verify as a proof on the other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from pervasive.chain import ContractCall, Ledger, open_ledger
from pervasive.chain.rpc import TransactionRefused
from pervasive.config import Settings
from pervasive.crosschain.evm_chain import EvmDataChain
from pervasive.crosschain.inclusion import ProofDefect, inclusion_defect
from pervasive.errors import ConfigError

USER_CHAIN, DATA_CHAIN = 1001, 424242
# runtime code "CHAINID PUSH0 MSTORE PUSH1 32 PUSH0 RETURN": returns block.chainid
CHAINID_RUNTIME = bytes.fromhex("465f5260205ff3")
CHAINID_INITCODE = bytes.fromhex("66") + CHAINID_RUNTIME + bytes.fromhex("5f5260076019f3")


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
async def pair(
    request: pytest.FixtureRequest, tmp_settings: Settings
) -> AsyncIterator[tuple[Ledger, Ledger]]:
    settings = replace(tmp_settings, backend=request.param)
    user = await open_ledger(settings, persist=False, chain_id=USER_CHAIN)
    try:
        data = await open_ledger(settings, persist=False, chain_id=DATA_CHAIN)
        try:
            yield user, data
        finally:
            await data.close()
    finally:
        await user.close()


async def _chainid_opcode(ledger: Ledger) -> int:
    receipt = await ledger.transactor(ledger.dev_signer(0)).deploy(CHAINID_INITCODE)
    assert receipt.contract_address is not None
    assert await ledger.code(receipt.contract_address) == CHAINID_RUNTIME
    return int.from_bytes(await ledger.call(receipt.contract_address, b""), "big")


async def test_each_chain_has_its_own_id(pair: tuple[Ledger, Ledger]) -> None:
    user, data = pair
    assert (user.chain_id, data.chain_id) == (USER_CHAIN, DATA_CHAIN)
    assert (int(await user.w3.eth.chain_id), int(await data.w3.eth.chain_id)) == (
        USER_CHAIN,
        DATA_CHAIN,
    )
    assert await _chainid_opcode(user) == USER_CHAIN
    assert await _chainid_opcode(data) == DATA_CHAIN


async def test_transactions_and_proofs_do_not_cross_chains(pair: tuple[Ledger, Ledger]) -> None:
    user, data = pair
    on_user, on_data = EvmDataChain(user), EvmDataChain(data)
    assert on_user.name != on_data.name
    payee = user.dev_signer(1).address
    pay = await user.transactor(user.dev_signer(0)).transact(ContractCall(payee, b"", value=7))
    posted = await data.transactor(data.dev_signer(0)).transact(ContractCall(payee, b"", value=9))

    raw = await user.rpc.raw_transaction(pay.transaction_hash)
    assert raw is not None
    with pytest.raises(TransactionRefused):  # EIP-155: signed for chain 1001 only
        await data.rpc.send_raw(raw)

    proof = await on_user.prove_inclusion(pay.transaction_hash)
    assert proof is not None and on_user.verify_inclusion(proof)
    assert await on_data.prove_inclusion(pay.transaction_hash) is None
    assert not on_data.verify_inclusion(proof)
    # relabelled for the data chain, the signature's chain id still gives it away
    assert not on_data.verify_inclusion(replace(proof, chain=on_data.name))
    assert inclusion_defect(proof, chain_id=DATA_CHAIN) is ProofDefect.CHAIN
    assert on_data.refusals == {"other_chain": 1, "chain": 1}
    data_proof = await on_data.prove_inclusion(posted.transaction_hash)
    assert data_proof is not None and on_data.verify_inclusion(data_proof)


async def test_a_persisted_embedded_chain_keeps_its_id(tmp_settings: Settings) -> None:
    async with await open_ledger(tmp_settings, chain_id=DATA_CHAIN) as first:
        await first.transactor(first.dev_signer(0)).transact(
            ContractCall(first.dev_signer(1).address, b"", value=1)
        )
    async with await open_ledger(tmp_settings) as again:  # the id is the chain's, kept
        assert again.chain_id == DATA_CHAIN and await again.block_number() == 1
        assert await _chainid_opcode(again) == DATA_CHAIN
    with pytest.raises(ConfigError, match=f"has chain id {DATA_CHAIN}, not {USER_CHAIN}"):
        await open_ledger(tmp_settings, chain_id=USER_CHAIN)


async def test_a_bad_chain_id_is_a_one_line_config_error(tmp_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="positive 63-bit"):
        await open_ledger(tmp_settings, persist=False, chain_id=0)
