"""Vyper contracts and their typed Python wrappers, one wrapper per contract.

See ``README.md`` in this folder for the control flow (compile → deploy or reuse →
wrapper) and what this layer may import.
"""

from pervasive.contracts.compiler import Artifact, compile_contract, compile_source
from pervasive.contracts.contract import Contract, DecodedEvent
from pervasive.contracts.deployments import (
    Deployment,
    DeploymentBook,
    deploy,
    ensure_deployed,
)
from pervasive.contracts.entities import (
    FieldType,
    IntermediateNode,
    Sensor,
    SensorField,
    User,
)
from pervasive.contracts.registry import REGISTRY, Registry

__all__ = [
    "REGISTRY",
    "Artifact",
    "Contract",
    "DecodedEvent",
    "Deployment",
    "DeploymentBook",
    "FieldType",
    "IntermediateNode",
    "Registry",
    "Sensor",
    "SensorField",
    "User",
    "compile_contract",
    "compile_source",
    "deploy",
    "ensure_deployed",
]
