"""The registry on a real EVM (embedded py-evm and anvil): what users, owners and agreements see."""

from __future__ import annotations

from pathlib import Path

import pytest

from pervasive.chain import ContractCall, Ledger
from pervasive.contracts import Registry
from pervasive.crypto import PrivateKey, keccak256
from pervasive.domain import FieldType, SensorField
from pervasive.errors import InvalidInput, NotFound, TransactionReverted


def key(seed: str) -> PrivateKey:
    return PrivateKey(keccak256(seed.encode()))


TEMPERATURE = [SensorField("celsius", FieldType.INT64), SensorField("humidity", FieldType.UINT64)]
LOCK = [SensorField("locked", FieldType.BOOL), SensorField("rider", FieldType.ADDRESS)]


async def test_users_register_update_deactivate_enumerate(
    registry: Registry, ledger: Ledger
) -> None:
    alice, bob = ledger.dev_signer(0), ledger.dev_signer(1)
    receipt = await registry.add_user("alice")
    await registry.with_signer(bob).add_user("bob")

    [event] = registry.contract.events(receipt, "UserRegistered")
    assert event.args["id"] == "alice"
    assert [u.id for u in await registry.list_users()] == ["alice", "bob"]
    assert await registry.get_user("bob") == (await registry.list_users(offset=1))[0]
    assert (await registry.get_user("alice")).account == alice.address

    new_account = key("alice-2").address
    await registry.update_user("alice", new_account)
    moved = await registry.get_user("alice")
    assert (moved.account, moved.owner, moved.active) == (new_account, alice.address, True)
    assert await registry.contract.call("is_active_user", new_account)
    assert not await registry.contract.call("is_active_user", alice.address)

    await registry.deactivate_user("alice")
    assert not (await registry.get_user("alice")).active
    assert not await registry.contract.call("is_active_user", new_account)
    assert len(await registry.list_users()) == 2  # deactivated users stay listed
    with pytest.raises(TransactionReverted, match="user is deactivated"):
        await registry.update_user("alice", alice.address)


async def test_sensors_declare_update_deactivate(registry: Registry) -> None:
    temp_key, lock_key = key("temp-1"), key("lock-1")
    await registry.add_sensor("temp-1", temp_key.public_key.to_bytes(), "temperature", TEMPERATURE)
    await registry.add_sensor("lock-1", lock_key.public_key.to_compressed(), "lock", LOCK)

    sensors = await registry.list_sensors()
    assert [(s.id, s.sensor_type, s.fields) for s in sensors] == [
        ("temp-1", "temperature", tuple(TEMPERATURE)),
        ("lock-1", "lock", tuple(LOCK)),
    ]
    assert sensors[0].public_key == temp_key.public_key.to_bytes()
    assert len(sensors[1].public_key) == 33

    fields = [*TEMPERATURE, SensorField("battery", FieldType.UINT256)]
    new_key = key("temp-1 rotated").public_key.to_bytes()
    await registry.update_sensor("temp-1", new_key, "temperature", fields)
    updated = await registry.get_sensor("temp-1")
    assert (updated.public_key, updated.fields) == (new_key, tuple(fields))

    await registry.deactivate_sensor("lock-1")
    assert not (await registry.get_sensor("lock-1")).active
    with pytest.raises(TransactionReverted, match="sensor is deactivated"):
        await registry.deactivate_sensor("lock-1")


async def test_nodes_register_update_deactivate(registry: Registry, ledger: Ledger) -> None:
    n1, n2 = key("node-1"), key("node-2")
    await registry.add_node(
        "node-1", n1.address, n1.public_key.to_bytes(), "mqtts://n1.example:8883"
    )
    await registry.add_node(
        "node-2", n2.address, n2.public_key.to_compressed(), "https://n2.example"
    )
    assert [n.id for n in await registry.list_nodes()] == ["node-1", "node-2"]

    with pytest.raises(InvalidInput, match="already belongs to a node"):
        await registry.add_node("node-3", n1.address, n1.public_key.to_bytes(), "mqtt://n3.example")
    with pytest.raises(TransactionReverted, match="account already belongs to a node"):
        await registry.update_node(
            "node-2", n1.address, n2.public_key.to_bytes(), "https://n2.example"
        )

    await registry.update_node(
        "node-1", n1.address, n1.public_key.to_bytes(), "mqtts://moved.example:1"
    )
    assert (await registry.get_node("node-1")).endpoint == "mqtts://moved.example:1"
    await registry.deactivate_node("node-1")
    node = await registry.get_node("node-1")
    assert (node.active, node.owner) == (False, ledger.dev_signer(0).address)
    assert not await registry.contract.call("is_active_node", n1.address)


async def test_only_the_owner_may_update_or_deactivate(registry: Registry, ledger: Ledger) -> None:
    await registry.add_user("alice")
    await registry.add_sensor("temp-1", key("t").public_key.to_bytes(), "temperature", TEMPERATURE)
    node = key("n")
    await registry.add_node("node-1", node.address, node.public_key.to_bytes(), "mqtt://n.example")
    mallory = registry.with_signer(ledger.dev_signer(5))

    with pytest.raises(TransactionReverted) as caught:
        await mallory.deactivate_user("alice")
    assert caught.value.reason == "only the user's owner may deactivate it"
    with pytest.raises(TransactionReverted, match="only the user's owner may update it"):
        await mallory.update_user("alice", ledger.dev_signer(5).address)
    with pytest.raises(TransactionReverted, match="only the sensor's owner may update it"):
        await mallory.update_sensor("temp-1", key("evil").public_key.to_bytes(), "lock", LOCK)
    with pytest.raises(TransactionReverted, match="only the sensor's owner may deactivate it"):
        await mallory.deactivate_sensor("temp-1")
    with pytest.raises(TransactionReverted, match="only the node's owner may deactivate it"):
        await mallory.deactivate_node("node-1")

    assert (await registry.get_user("alice")).active
    sensor = await registry.get_sensor("temp-1")
    assert (sensor.sensor_type, sensor.active) == ("temperature", True)
    assert (await registry.get_node("node-1")).active


async def test_duplicate_ids_are_refused_by_wrapper_and_contract(registry: Registry) -> None:
    public_key = key("t").public_key.to_bytes()
    await registry.add_sensor("temp-1", public_key, "temperature", TEMPERATURE)
    with pytest.raises(InvalidInput, match="'temp-1' is already registered"):
        await registry.add_sensor("temp-1", public_key, "temperature", TEMPERATURE)
    # Past the wrapper, the contract refuses too.
    with pytest.raises(TransactionReverted, match="sensor id already registered"):
        await registry.contract.transact(
            registry.signer,
            "register_sensor",
            "temp-1",
            public_key,
            "temperature",
            [],  # type: ignore[arg-type]
        )
    assert await registry.contract.call("sensor_count") == 1


async def test_unknown_field_types_are_refused(registry: Registry) -> None:
    with pytest.raises(InvalidInput, match="unknown field type 'float'"):
        SensorField.parse("celsius:float")
    public_key = key("t").public_key.to_bytes()
    with pytest.raises(TransactionReverted, match="unknown field type"):
        await registry.contract.transact(
            registry.signer, "register_sensor", "temp-1", public_key, "temperature",  # type: ignore[arg-type]
            [("celsius", 1), ("pressure", len(FieldType))],
        )  # fmt: skip
    assert not await registry.has_sensor("temp-1")


async def test_a_mined_revert_leaves_no_half_written_state(
    registry: Registry, ledger: Ledger
) -> None:
    public_key = key("t").public_key.to_bytes()
    bad_fields = [("celsius", 1), ("humidity", 2), ("pressure", 99)]
    data = registry.contract.encode(
        "register_sensor", "temp-1", public_key, "temperature", bad_fields
    )
    manager = ledger.transactor(ledger.dev_signer(0))
    # A fixed gas limit skips estimation, so the transaction is mined and reverts in its block.
    with pytest.raises(TransactionReverted, match="unknown field type") as caught:
        await manager.transact(ContractCall(to=registry.address, data=data, gas=600_000))
    assert caught.value.tx_hash is not None
    assert (await ledger.receipt(caught.value.tx_hash)).status == 0  # type: ignore[union-attr]
    assert await registry.contract.call("sensor_count") == 0
    assert not await registry.has_sensor("temp-1")
    # The id is still free: the correct declaration goes through.
    await registry.add_sensor("temp-1", public_key, "temperature", TEMPERATURE)
    assert (await registry.get_sensor("temp-1")).fields == tuple(TEMPERATURE)


async def test_unknown_entities_are_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound, match="no user 'nobody'"):
        await registry.get_user("nobody")
    with pytest.raises(NotFound):
        await registry.get_sensor("nobody")
    with pytest.raises(NotFound):
        await registry.get_node("nobody")
    assert await registry.list_nodes() == []
    with pytest.raises(TransactionReverted, match="unknown sensor"):
        await registry.deactivate_sensor("nobody")


async def test_agreement_factory_is_set_once_by_the_deployer(
    registry: Registry, ledger: Ledger, artifacts: Path
) -> None:
    deployer, other = ledger.dev_signer(0), ledger.dev_signer(1)
    factory = await Registry.open(
        ledger, other, artifacts=artifacts
    )  # any deployed contract will do as a factory
    with pytest.raises(TransactionReverted, match="only the deployer"):
        await registry.contract.transact(other, "set_agreement_factory", factory.address)
    with pytest.raises(TransactionReverted, match="must be a deployed contract"):
        await registry.contract.transact(deployer, "set_agreement_factory", other.address)
    receipt = await registry.contract.transact(deployer, "set_agreement_factory", factory.address)
    assert [e.name for e in registry.contract.events(receipt)] == ["AgreementFactorySet"]
    assert await registry.contract.call("agreement_factory") == factory.address
    with pytest.raises(TransactionReverted, match="already set"):
        await registry.contract.transact(deployer, "set_agreement_factory", factory.address)
    with pytest.raises(TransactionReverted, match="only the agreement factory"):
        await registry.contract.transact(deployer, "record_agreement", other.address, other.address)


async def test_gas_per_registration_stays_bounded(registry: Registry, ledger: Ledger) -> None:
    node = key("n")
    gas = {
        "user": (await registry.add_user("alice")).gas_used,
        "sensor (2 fields)": (
            await registry.add_sensor(
                "temp-1", key("t").public_key.to_bytes(), "temperature", TEMPERATURE
            )
        ).gas_used,
        "node": (
            await registry.add_node(
                "node-1", node.address, node.public_key.to_bytes(), "mqtts://n1.example:8883"
            )
        ).gas_used,
    }
    print(f"\n{ledger.kind} gas per registration: {gas}")
    assert gas["user"] < 250_000
    assert gas["sensor (2 fields)"] < 500_000
    assert gas["node"] < 400_000
