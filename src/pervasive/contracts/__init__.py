"""Vyper contracts and their typed Python wrappers, one wrapper per contract.

See ``README.md`` in this folder for the control flow (compile → deploy or reuse →
wrapper) and what this layer may import. The pure types the wrappers take and return
(entities, agreement terms, the update struct) live in :mod:`pervasive.domain`.
"""

from pervasive.contracts.agreement import AGREEMENT, Agreement
from pervasive.contracts.agreement_factory import (
    AGREEMENT_FACTORY,
    AgreementFactory,
    blueprint_deploy_code,
)
from pervasive.contracts.agreement_records import (
    DisputeRecord,
    ProofEvidence,
    Record,
    RevealEvidence,
    compact_signature,
)
from pervasive.contracts.compiler import Artifact, compile_contract, compile_source
from pervasive.contracts.contract import Contract, DecodedEvent
from pervasive.contracts.data_index import DataIndex, IndexPosting
from pervasive.contracts.deployments import (
    Deployment,
    DeploymentBook,
    deploy,
    ensure_deployed,
)
from pervasive.contracts.deposit_oracle import (
    DepositAttestation,
    DepositOracle,
    attestation_digest,
    pack_signatures,
    sign_attestation,
)
from pervasive.contracts.htlc import Htlc, HtlcLock, hashlock
from pervasive.contracts.notary import Notary, NotaryTerms, penalty_message, release_message
from pervasive.contracts.registry import REGISTRY, Registry
from pervasive.contracts.sale_order import (
    MAX_PRICE,
    SALE_ORDER,
    SALE_ORDER_FACTORY,
    SaleEvent,
    SaleItem,
    SaleOrder,
    SaleOrderFactory,
)
from pervasive.contracts.user_contract import Payment, UserContract, payment_id

__all__ = [
    "AGREEMENT",
    "AGREEMENT_FACTORY",
    "MAX_PRICE",
    "REGISTRY",
    "SALE_ORDER",
    "SALE_ORDER_FACTORY",
    "Agreement",
    "AgreementFactory",
    "Artifact",
    "Contract",
    "DataIndex",
    "DecodedEvent",
    "Deployment",
    "DeploymentBook",
    "DepositAttestation",
    "DepositOracle",
    "DisputeRecord",
    "Htlc",
    "HtlcLock",
    "IndexPosting",
    "Notary",
    "NotaryTerms",
    "Payment",
    "ProofEvidence",
    "Record",
    "Registry",
    "RevealEvidence",
    "SaleEvent",
    "SaleItem",
    "SaleOrder",
    "SaleOrderFactory",
    "UserContract",
    "attestation_digest",
    "blueprint_deploy_code",
    "compact_signature",
    "compile_contract",
    "compile_source",
    "deploy",
    "ensure_deployed",
    "hashlock",
    "pack_signatures",
    "payment_id",
    "penalty_message",
    "release_message",
    "sign_attestation",
]
