"""Vyper contracts and their typed Python wrappers, one wrapper per contract.

See ``README.md`` in this folder for the control flow (compile → deploy or reuse →
wrapper) and what this layer may import.
"""

from pervasive.contracts.agreement import AGREEMENT, Agreement
from pervasive.contracts.agreement_factory import (
    AGREEMENT_FACTORY,
    AgreementFactory,
    blueprint_deploy_code,
)
from pervasive.contracts.agreement_records import (
    UPDATE_TYPE,
    DisputeRecord,
    ProofEvidence,
    Record,
    RevealEvidence,
    UpdatePayload,
    compact_signature,
)
from pervasive.contracts.agreement_terms import (
    TERMS_TYPE,
    AgreementTerms,
    QoSLevel,
    Reaction,
    ReactionKind,
    Signing,
    agreement_domain,
)
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
    "AGREEMENT",
    "AGREEMENT_FACTORY",
    "REGISTRY",
    "TERMS_TYPE",
    "UPDATE_TYPE",
    "Agreement",
    "AgreementFactory",
    "AgreementTerms",
    "Artifact",
    "Contract",
    "DecodedEvent",
    "Deployment",
    "DeploymentBook",
    "DisputeRecord",
    "FieldType",
    "IntermediateNode",
    "ProofEvidence",
    "QoSLevel",
    "Reaction",
    "ReactionKind",
    "Record",
    "Registry",
    "RevealEvidence",
    "Sensor",
    "SensorField",
    "Signing",
    "UpdatePayload",
    "User",
    "agreement_domain",
    "blueprint_deploy_code",
    "compact_signature",
    "compile_contract",
    "compile_source",
    "deploy",
    "ensure_deployed",
]
