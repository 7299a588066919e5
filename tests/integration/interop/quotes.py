"""A small Vyper contract that emits ``CostQuoted``, its mapping and schema, for the interop tests.

Shared by ``tests/unit/interop``, ``tests/integration/interop`` and ``tests/faults/interop``
(their conftests put this folder on ``sys.path``).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from pervasive.chain import Ledger, Signer
from pervasive.contracts import Artifact, Contract, compile_source
from pervasive.contracts.deployments import deploy
from pervasive.interop import CompiledMappings, EventMapping, compile_mappings

QUOTES_SOURCE = """
# pragma version ~=0.4.3

event CostQuoted:
    carrier: indexed(address)
    shipment: String[128]
    cost: uint256

event Ignored:
    amount: uint256

@external
def quote(shipment: String[128], cost: uint256):
    log CostQuoted(carrier=msg.sender, shipment=shipment, cost=cost)

@external
def quote_many(prefix: String[32], count: uint256, cost: uint256):
    for i: uint256 in range(count, bound=64):
        log CostQuoted(carrier=msg.sender, shipment=concat(prefix, uint2str(i)), cost=cost + i)

@external
def ignore(amount: uint256):
    log Ignored(amount=amount)
"""

SCHEMA_ID = "urn:pervasive:schema:test:cost-quoted:1"
SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": SCHEMA_ID,
    "type": "object",
    "required": ["shipment", "cost", "carrier", "block"],
    "properties": {
        "shipment": {"type": "string", "minLength": 1},
        "cost": {"type": "integer", "minimum": 0, "maximum": 1000000},
        "carrier": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
        "block": {"type": "integer"},
    },
    "additionalProperties": False,
}
TYPE = "dev.pervasive.test.cost-quoted"
MAPPING = EventMapping(
    event="CostQuoted",
    type=TYPE,
    schema="schemas/cost-quoted.json",
    subject="{shipment}",
    data={"shipment": "shipment", "cost": "cost", "carrier": "carrier", "block": "$block"},
)
TOO_EXPENSIVE = 2_000_000
"""A cost the schema refuses (maximum 1,000,000)."""


@functools.cache
def quotes_artifact() -> Artifact:
    return compile_source("quotes", QUOTES_SOURCE)


def write_schema(base: Path) -> Path:
    """Write the schema file under ``base/schemas`` and return ``base``."""
    (base / "schemas").mkdir(parents=True, exist_ok=True)
    (base / "schemas" / "cost-quoted.json").write_text(json.dumps(SCHEMA))
    return base


def quotes_mappings(base: Path) -> CompiledMappings:
    return compile_mappings(quotes_artifact().abi, [MAPPING], base=write_schema(base))


async def deploy_quotes(ledger: Ledger, signer: Signer) -> Contract:
    artifact = quotes_artifact()
    deployment = await deploy(ledger, signer, artifact)
    return Contract(ledger, deployment.address, artifact.abi)
