"""The contract database C_d: only the writer writes, the owner moves the writer, keys match.

On the embedded chain and on anvil. ``record_key`` in Python must be the key a Vyper
logic contract computes with ``keccak256(abi_encode(name, id))``: checked against the
sample logic contract, which writes through C_d under its own keys.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pervasive.chain import Ledger
from pervasive.contracts import Contract, deploy
from pervasive.contracts.contract_database import ContractDatabase, record_key
from pervasive.errors import TransactionReverted
from pervasive.service import load_spec
from pervasive.service.deployment import compile_logic

SAMPLES = Path(__file__).parents[2] / "unit" / "service" / "samples"


async def test_only_the_writer_writes_and_only_the_owner_moves_it(
    ledger: Ledger, artifacts: Path
) -> None:
    owner, first, second = ledger.dev_signer(0), ledger.dev_signer(1), ledger.dev_signer(2)
    database = await ContractDatabase.deploy(ledger, owner, artifacts=artifacts)
    key = record_key("cost", "ship-1")
    assert await database.owner() == owner.address
    assert int(await database.writer(), 16) == 0
    with pytest.raises(TransactionReverted, match="only the writer may write"):
        await database.set_uint(key, 5)  # the owner is no writer
    with pytest.raises(TransactionReverted, match="only the owner may move the writer"):
        await database.with_signer(first).set_writer(first.address)

    moved = await database.set_writer(first.address)
    [event] = database.contract.events(moved, "WriterMoved")
    assert (int(event.args["old"], 16), event.args["new"]) == (0, first.address)
    written = await database.with_signer(first).set_uint(key, 1250)
    [record] = database.contract.events(written, "RecordSet")
    assert record.args["key"] == key
    assert record.args["value"] == (1250).to_bytes(32, "big")
    assert await database.get_uint(key) == 1250
    assert await database.read("cost", "ship-1", "uint256") == 1250

    await database.set_writer(second.address)
    with pytest.raises(TransactionReverted, match="only the writer may write"):
        await database.with_signer(first).set_uint(key, 1)
    writer = database.with_signer(second)
    await writer.set_address(record_key("carrier", "ship-1"), first.address)
    await writer.set_bool(record_key("delivered", "ship-1"), True)
    await writer.set_bytes32(record_key("delta", "ship-1"), (-3 % 2**256).to_bytes(32, "big"))
    assert await database.get_uint(key) == 1250  # moving the writer kept the record
    assert await database.get_address(record_key("carrier", "ship-1")) == first.address
    assert await database.read("carrier", "ship-1", "address") == first.address
    assert await database.get_bool(record_key("delivered", "ship-1")) is True
    assert await database.read("delivered", "ship-2", "bool") is False
    assert await database.read("delta", "ship-1", "int256") == -3


@pytest.mark.parametrize("shipment", ["ship-1", "", "ü" * 20, "x" * 64])
async def test_record_keys_are_the_keys_vyper_computes(
    ledger: Ledger, artifacts: Path, shipment: str
) -> None:
    owner = ledger.dev_signer(0)
    spec = load_spec(SAMPLES / "shipping.toml")
    database = await ContractDatabase.deploy(ledger, owner, artifacts=artifacts)
    artifact = compile_logic(spec, artifacts)
    logic = await deploy(ledger, owner, artifact, database.address, owner.address)
    await database.set_writer(logic.address)
    contract = Contract(ledger, logic.address, artifact.abi)
    await contract.transact(owner, "quote", shipment, 777, owner.address)
    assert await database.get_uint(record_key("cost", shipment)) == 777
    assert await database.read("carrier", shipment, "address") == owner.address
    assert await database.get_uint(record_key("cost", shipment + "x")) == 0
