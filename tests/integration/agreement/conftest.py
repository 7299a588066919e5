"""Fixtures of the agreement tests: a registered :class:`World` on a fresh chain per test.

Every test gets a fresh chain (the shared ``ledger`` fixture: embedded and anvil).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from agreement_world import LOCK_FIELDS, SENSOR_KEY, World

from pervasive.chain import Ledger
from pervasive.contracts import AgreementFactory, Registry


@pytest.fixture
async def world(ledger: Ledger, artifacts: Path) -> World:
    deployer = ledger.dev_signer(0)
    registry = await Registry.open(ledger, deployer, artifacts=artifacts)
    factory = await AgreementFactory.open(ledger, deployer, registry, artifacts=artifacts)
    parties = (ledger.dev_signer(1), ledger.dev_signer(2))
    nodes = (ledger.dev_signer(3), ledger.dev_signer(4))
    for name, party in zip(("service-provider", "insurer"), parties, strict=True):
        await registry.with_signer(party).add_user(name)
    for i, node in enumerate(nodes):
        public_key = World.key(node).public_key.to_bytes()
        await registry.add_node(f"node-{i}", node.address, public_key, f"mqtt://node{i}.test:1883")
    await registry.add_sensor("lock-1", SENSOR_KEY.public_key.to_compressed(), "lock", LOCK_FIELDS)
    return World(ledger, registry, factory, deployer, parties, nodes, SENSOR_KEY)
