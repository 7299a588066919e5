"""Setting an agreement up on a chain and a broker: what a demo or a test does before nodes run.

Paper 002, section 2: "Users, sensors and intermediate nodes must be registered inside
the main chain before the on-chain smart contract definition." :func:`provision_agreement`
does exactly that, idempotently (entries already registered are kept):

1. registers the users, the sensors' declarations and the intermediate nodes in the
   registry (each by the account that owns it);
2. has every party sign the terms (EIP-712) and creates the agreement through the
   factory, which checks the signatures, the registry entries and the terms;
3. funds the parties' escrow.

A sensor (device id) or a node (``svc:node.<id>``) gets its TLS identity from
:meth:`pervasive.pki.CertificateAuthority.client_credentials`.

Example::

    agreement = await provision_agreement(ledger, deployer, plan)
    creds = ca.client_credentials("svc:node.insurer", home / "mqtt")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pervasive.chain import Ledger, Signer
from pervasive.contracts import Agreement, AgreementFactory, Registry
from pervasive.crypto import PrivateKey
from pervasive.domain import AgreementTerms, QoS, Reaction, SigningMode
from pervasive.offchain.functions import OffchainFunction
from pervasive.sensing import SensorDeclaration

__all__ = [
    "AgreementPlan",
    "NodePlan",
    "PartyPlan",
    "SensorPlan",
    "provision_agreement",
]


@dataclass(frozen=True)
class PartyPlan:
    """A user ``u`` of the agreement: its registry id and the account acting for it."""

    id: str
    signer: Signer


@dataclass(frozen=True)
class SensorPlan:
    """A sensor ``s``: its registry (and MQTT device) id, key and declaration."""

    id: str
    key: PrivateKey
    declaration: SensorDeclaration
    owner: int
    """Index of the party that registers it."""


@dataclass(frozen=True)
class NodePlan:
    """An intermediate node: its id, its account (which signs and sends), the party trusting it."""

    id: str
    signer: Signer
    party: int
    endpoint: str = "mqtts://127.0.0.1:8883"


@dataclass(frozen=True)
class AgreementPlan:
    """Everything an agreement needs: who, which sensors and nodes, which ``f``, which terms."""

    parties: tuple[PartyPlan, ...]
    sensors: tuple[SensorPlan, ...]
    nodes: tuple[NodePlan, ...]
    function: OffchainFunction
    window_size: int
    sliding_factor: int
    qos: QoS = QoS.OFFCHAIN_PROOF
    reward: int = 0
    reaction: Reaction = field(default_factory=Reaction)
    expiry: int = 2**40
    escrow: Mapping[int, int] = field(default_factory=dict)
    """Wei each party (by index) deposits once the agreement is active."""
    start_points: Sequence[int] | None = None
    mode: SigningMode = SigningMode.RING
    """How the nodes sign; part of the terms every party signs."""
    static_leader: int | None = 0
    """The leader's index in ``nodes`` (leader and fast modes); ``None`` rotates it."""


async def _register(registry: Registry, plan: AgreementPlan) -> None:
    for party in plan.parties:
        if not await registry.has_user(party.id):
            await registry.with_signer(party.signer).add_user(party.id)
    for sensor in plan.sensors:
        if not await registry.has_sensor(sensor.id):
            owner = registry.with_signer(plan.parties[sensor.owner].signer)
            await owner.add_sensor(
                sensor.id,
                sensor.key.public_key.to_bytes(),
                sensor.declaration.sensor_type,
                list(sensor.declaration.fields),
            )
    for node in plan.nodes:
        if not await registry.has_node(node.id):
            key = PrivateKey(node.signer.private_key)
            owner = registry.with_signer(plan.parties[node.party].signer)
            await owner.add_node(node.id, key.address, key.public_key.to_bytes(), node.endpoint)


async def provision_agreement(
    ledger: Ledger,
    deployer: Signer,
    plan: AgreementPlan,
    *,
    registry: Registry | None = None,
    artifacts: Path | None = None,
) -> Agreement:
    """Register everything ``plan`` names, create the agreement signed by all, fund escrow.

    ``deployer`` deploys the registry and the factory when they are missing.

    Example: ``agreement = await provision_agreement(ledger, ledger.dev_signer(0), plan)``.
    """
    registry = registry or await Registry.open(ledger, deployer, artifacts=artifacts)
    await _register(registry, plan)
    factory = await AgreementFactory.open(ledger, deployer, registry, artifacts=artifacts)
    terms = AgreementTerms(
        parties=tuple(p.signer.address for p in plan.parties),
        sensors=tuple(s.declaration.address for s in plan.sensors),
        start_points=tuple(plan.start_points or (0,) * len(plan.sensors)),
        window_size=plan.window_size,
        sliding_factor=plan.sliding_factor,
        function_name=plan.function.name,
        function_hash=plan.function.source_hash,
        nodes=tuple(n.signer.address for n in plan.nodes),
        node_parties=tuple(n.party for n in plan.nodes),
        qos=plan.qos,
        reward=plan.reward,
        reaction=plan.reaction,
        expiry=plan.expiry,
        signing=plan.mode,
        leader=plan.static_leader,
    )
    approvals = [factory.sign_terms(PrivateKey(p.signer.private_key), terms) for p in plan.parties]
    agreement = await factory.create(deployer, terms, [s.id for s in plan.sensors], approvals)
    for index, amount in plan.escrow.items():
        if amount > 0:
            await agreement.deposit(plan.parties[index].signer, amount)
    return agreement
