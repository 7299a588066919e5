"""Gas of the registry (paper 002's mainContract): deployment and each kind of write.

Setup: a fresh chain per backend (``persist=False``; embedded py-evm and anvil by
default), the registry compiled from ``contracts/vyper/registry.vy`` and deployed by
development account 0, which then registers everything through the typed wrapper
(:class:`pervasive.contracts.Registry`). Every figure is the receipt's ``gas_used``, so it
includes the 21,000 base cost and the calldata. The first entity of each kind is
measured apart: it also pays for its kind's counter slot going from zero to one.

Rows: deploying the registry (with its init code size), the first user, sensor and node,
then a further user (a short and a 64-character id), sensors with 0, 1, 2 and 16 fields,
a node, a node's endpoint update and a sensor's deactivation. The script exits with
status 1 if the backends disagree on any row (both run the same EVM rules, prague).

Usage: ``.venv/bin/python bench/registry_gas.py [--backends embedded,anvil]``; prints a
table and writes ``bench/results/registry_gas.csv``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import cast

from pervasive.chain import Ledger, open_ledger
from pervasive.config import BackendName, Settings
from pervasive.contracts import Contract, Registry
from pervasive.crypto import PrivateKey, keccak256
from pervasive.domain import FieldType, SensorField

RESULTS = Path(__file__).parent / "results" / "registry_gas.csv"
TWO_FIELDS = [SensorField("celsius", FieldType.INT64), SensorField("humidity", FieldType.UINT64)]


def key(seed: str) -> PrivateKey:
    return PrivateKey(keccak256(seed.encode()))


def fields(count: int) -> list[SensorField]:
    return [SensorField(f"field_{i}", FieldType.UINT64) for i in range(count)]


async def measure(ledger: Ledger) -> dict[str, int]:
    """Gas per operation on ``ledger`` (a fresh chain)."""
    deployer = ledger.dev_signer(0)
    artifact = Registry.artifact()
    deployed = await ledger.transactor(deployer).deploy(artifact.bytecode)
    assert deployed.contract_address is not None
    registry = Registry(Contract(ledger, deployed.contract_address, artifact.abi), deployer)
    gas = {
        f"deploy the registry ({len(artifact.bytecode):,} bytes of init code)": deployed.gas_used
    }

    async def sensor(sensor_id: str, declared: list[SensorField]) -> int:
        public_key = key(sensor_id).public_key.to_bytes()
        receipt = await registry.add_sensor(sensor_id, public_key, "temperature", declared)
        return receipt.gas_used

    async def node(node_id: str) -> int:
        account = key(node_id)
        receipt = await registry.add_node(
            node_id, account.address, account.public_key.to_bytes(), "mqtts://n.example:8883"
        )
        return receipt.gas_used

    gas["register_user, first user (id 'alice')"] = (
        await registry.add_user("alice", key("alice").address)
    ).gas_used
    gas["register_sensor, first sensor, 2 fields"] = await sensor("first", TWO_FIELDS)
    gas["register_node, first node"] = await node("node-0")
    gas["register_user (id 'bob')"] = (await registry.add_user("bob", key("bob").address)).gas_used
    gas["register_user (64-character id)"] = (
        await registry.add_user("u" * 64, key("long").address)
    ).gas_used
    for count in (0, 1, 2, 16):
        label = f"register_sensor, {count} field" + ("" if count == 1 else "s")
        gas[label] = await sensor(f"temp-{count}", fields(count))
    gas["register_node"] = await node("node-1")
    moved = key("node-1")
    gas["update_node (new endpoint)"] = (
        await registry.update_node(
            "node-1", moved.address, moved.public_key.to_bytes(), "mqtts://m.example:8883"
        )
    ).gas_used
    gas["deactivate_sensor"] = (await registry.deactivate_sensor("temp-0")).gas_used
    return gas


async def run(backends: list[str]) -> dict[str, dict[str, int]]:
    by_backend: dict[str, dict[str, int]] = {}
    for backend in backends:
        home = Path(tempfile.mkdtemp(prefix="registry-gas-"))
        settings = replace(Settings(home=home), backend=cast(BackendName, backend))
        ledger = await open_ledger(settings, persist=False)
        try:
            by_backend[backend] = await measure(ledger)
        finally:
            await ledger.close()
    return by_backend


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="embedded,anvil")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ("embedded", "anvil")]
    if unknown or not backends:
        parser.error(f"--backends takes embedded and/or anvil, not {', '.join(unknown)}")
    by_backend = asyncio.run(run(backends))
    operations = list(by_backend[backends[0]])
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["operation", *backends])
        for operation in operations:
            writer.writerow([operation, *(by_backend[b][operation] for b in backends)])
    width = max(len(o) for o in operations)
    print(f"{'operation':<{width}}  " + "  ".join(f"{b:>10}" for b in backends))
    disagree = []
    for operation in operations:
        values = [by_backend[b][operation] for b in backends]
        print(f"{operation:<{width}}  " + "  ".join(f"{v:>10,}" for v in values))
        if len(set(values)) > 1:
            disagree.append(operation)
    print(f"wrote {RESULTS}")
    if disagree:
        print(f"the backends disagree on: {', '.join(disagree)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
