"""The EIP-2537 BLS12-381 precompiles (Prague) against the EIP authors' vectors.

Every vector file through ``eth_call`` on anvil; a few cheap vectors per precompile on
the embedded chain (py-evm's pure-Python pairing takes about a second). A ``fail-*``
vector must make the call fail on both backends. On anvil the gas of each successful
call is checked too: the vector's precompile cost plus Prague's intrinsic cost with
EIP-7623's calldata floor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_utils.address import to_checksum_address

from pervasive.chain import HARDFORK, ContractCall, Ledger
from pervasive.chain.hardfork import BLS12_381_PRECOMPILES
from pervasive.contracts.compiler import EVM_VERSION
from pervasive.errors import TransactionReverted

_NAME = "eip2537"
VECTORS = Path(__file__).resolve().parents[2] / "vectors" / _NAME

_PRECOMPILE_OF = {
    "add_G1": "G1ADD",
    "mul_G1": "G1MSM",
    "msm_G1": "G1MSM",
    "add_G2": "G2ADD",
    "mul_G2": "G2MSM",
    "msm_G2": "G2MSM",
    "pairing_check": "PAIRING_CHECK",
    "map_fp_to_G1": "MAP_FP_TO_G1",
    "map_fp2_to_G2": "MAP_FP2_TO_G2",
}
FILES = sorted(path.name for path in VECTORS.glob("*.json"))

# Cheap on py-evm: one two-pair pairing (about 2 s), the rest milliseconds; the failures
# cover length, curve, subgroup, field-element and top-byte checks.
EMBEDDED_SAMPLE = {
    "add_G1_bls.json": "bls_g1add_g1+p1",
    "add_G2_bls.json": "bls_g2add_g2+p2",
    "mul_G1_bls.json": "bls_g1mul_(1*g1=g1)",
    "mul_G2_bls.json": "bls_g2mul_(1*g2=g2)",
    "map_fp_to_G1_bls.json": "bls_g1map_",
    "map_fp2_to_G2_bls.json": "bls_g2map_",
    "pairing_check_bls.json": "bls_pairing_e(G1,G2)*e(G1,-G2)=1",
    "fail-add_G1_bls.json": "bls_g1add_point_not_on_curve",
    "fail-mul_G2_bls.json": "bls_g2mul_empty_input",
    "fail-msm_G1_bls.json": "bls_g1msm_g1_not_in_correct_subgroup",
    "fail-pairing_check_bls.json": "bls_pairing_top_bytes",
    "fail-map_fp_to_G1_bls.json": "bls_invalid_fq_element",
}

_ANVIL = [pytest.param("anvil", marks=pytest.mark.anvil)]


def _vectors(file: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((VECTORS / file).read_text())
    return entries


def _address(file: str) -> str:
    stem = file.removeprefix("fail-").removesuffix("_bls.json")
    return to_checksum_address(BLS12_381_PRECOMPILES[_PRECOMPILE_OF[stem]].to_bytes(20, "big"))


def _prague_gas(data: bytes, execution: int) -> int:
    """Gas of a transaction that calls a precompile: EIP-7623's rule (Prague)."""
    zeros = data.count(0)
    tokens = zeros + 4 * (len(data) - zeros)
    return 21_000 + max(4 * tokens + execution, 10 * tokens)


async def _outcome(ledger: Ledger, file: str, vector: dict[str, Any]) -> str | None:
    """What is wrong with ``vector``'s outcome on ``ledger`` (``None``: as expected)."""
    data = bytes.fromhex(vector["Input"])
    sender = ledger.dev_signer(0).address
    try:
        output = await ledger.call(_address(file), data, sender=sender)
    except TransactionReverted as failed:
        return None if "ExpectedError" in vector else f"failed: {failed.reason}"
    if "ExpectedError" in vector:
        return f"succeeded with 0x{output.hex()}, expected {vector['ExpectedError']!r}"
    if output.hex() != vector["Expected"]:
        return f"returned 0x{output.hex()}"
    return None


def test_every_vector_file_is_vendored_and_mapped() -> None:
    assert len(FILES) == 16
    for file in FILES:
        assert _vectors(file), file
        assert _address(file)
    for file, name in EMBEDDED_SAMPLE.items():
        assert name in {vector["Name"] for vector in _vectors(file)}, (file, name)


def test_one_hard_fork_everywhere() -> None:
    assert HARDFORK == EVM_VERSION == "prague"


@pytest.mark.parametrize("ledger", _ANVIL, indirect=True)
async def test_anvil_runs_the_pinned_hard_fork(ledger: Ledger) -> None:
    info = await ledger.w3.provider.make_request("anvil_nodeInfo", [])  # type: ignore[arg-type]
    assert str(info["result"]["hardFork"]).lower() == HARDFORK


@pytest.mark.parametrize("file", FILES)
@pytest.mark.parametrize("ledger", _ANVIL, indirect=True)
async def test_every_vector_on_anvil(ledger: Ledger, file: str) -> None:
    wrong = {}
    sender = ledger.dev_signer(0).address
    for vector in _vectors(file):
        problem = await _outcome(ledger, file, vector)
        if problem is None and "Gas" in vector:
            data = bytes.fromhex(vector["Input"])
            gas = await ledger.estimate_gas(sender, _address(file), data)
            expected = _prague_gas(data, int(vector["Gas"]))
            if gas != expected:
                problem = f"gas {gas}, expected {expected} ({vector['Gas']} in the precompile)"
        if problem is not None:
            wrong[vector["Name"]] = problem
    assert not wrong


@pytest.mark.parametrize("file", sorted(EMBEDDED_SAMPLE))
@pytest.mark.parametrize("ledger", ["embedded"], indirect=True)
async def test_a_sample_on_the_embedded_chain(ledger: Ledger, file: str) -> None:
    (vector,) = [v for v in _vectors(file) if v["Name"] == EMBEDDED_SAMPLE[file]]
    assert await _outcome(ledger, file, vector) is None


async def test_a_failing_precompile_is_a_revert_for_every_entry_point(ledger: Ledger) -> None:
    # anvil answers a halted call with JSON-RPC error "EVM error PrecompileError",
    # py-evm with its own exception: both must reach the caller as TransactionReverted
    file = "fail-add_G1_bls.json"
    (vector,) = [v for v in _vectors(file) if v["Name"] == "bls_g1add_point_not_on_curve"]
    data, to = bytes.fromhex(vector["Input"]), _address(file)
    manager = ledger.transactor(ledger.dev_signer(0))
    with pytest.raises(TransactionReverted):
        await ledger.call(to, data)
    with pytest.raises(TransactionReverted):
        await ledger.estimate_gas(manager.signer.address, to, data)
    with pytest.raises(TransactionReverted) as mined:
        await manager.transact(ContractCall(to=to, data=data, gas=100_000))
    assert mined.value.tx_hash is not None
