"""The node's view of its agreement on-chain: the spec it runs, and the port it writes through.

:func:`load_agreement` reads the agreement's terms (``Agreement.at``) and the sensor
declarations of the registry and builds the :class:`AgreementSpec` the sans-I/O
protocol runs, plus the sensors' registry ids (their MQTT device ids).
:class:`ContractAgreementPort` is the committee's
:class:`~pervasive.committee.SubmissionPort` of :class:`~pervasive.domain.SignedUpdate`
over the :class:`~pervasive.contracts.Agreement` wrapper: it asks whether a window is
recorded, sends updates and opens disputes with signed evidence, all from the node's
own account.

Example::

    loaded = await load_agreement(ledger, registry, "0xAgreement")
    port = ContractAgreementPort(loaded.contract, node_signer)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pervasive.chain import Ledger, Receipt, Signer
from pervasive.committee import SubmissionPort
from pervasive.contracts import Agreement, ProofEvidence, Registry, RevealEvidence
from pervasive.crypto import PublicKey
from pervasive.domain import Sensor, SignedUpdate
from pervasive.errors import InvalidInput, TransactionReverted
from pervasive.offchain.agreement import AgreementSpec
from pervasive.offchain.outcomes import DisputeEvidence, DisputeKind
from pervasive.sensing import SensorDeclaration

__all__ = [
    "ALREADY_RECORDED",
    "AgreementPort",
    "ContractAgreementPort",
    "LoadedAgreement",
    "load_agreement",
]

ALREADY_RECORDED = "window already updated"
"""The agreement contract's revert reason for a second update of the same window."""

_ZERO = bytes(32)


class AgreementPort(SubmissionPort[SignedUpdate], Protocol):
    """What a node needs from its agreement on-chain: updates exactly once, and disputes."""

    async def open_dispute(
        self, t: int, kind: DisputeKind, evidence: DisputeEvidence, data: bytes
    ) -> Receipt:
        """Open a dispute on window ``t`` with signed evidence (and ``w[t]`` on-chain QoS)."""
        ...


@dataclass(frozen=True)
class LoadedAgreement:
    """An agreement as a node needs it: the wrapper, the protocol spec, the sensor ids."""

    contract: Agreement
    spec: AgreementSpec
    sensor_ids: tuple[str, ...]


async def load_agreement(
    ledger: Ledger,
    registry: Registry,
    address: str,
    *,
    artifacts: Path | None = None,
) -> LoadedAgreement:
    """Read agreement ``address`` and the declarations of its sensors from the registry.

    How the nodes sign (mode and leader) comes from the terms every party signed, so
    the nodes of an agreement cannot disagree on it; ``artifacts`` caches the compiled
    ABI. Raises :class:`InvalidInput` if a sensor is not in the registry.

    Example: ``loaded = await load_agreement(ledger, registry, address)``.
    """
    contract = await Agreement.at(ledger, address, artifacts=artifacts)
    terms = contract.terms
    by_address: dict[str, Sensor] = {}
    for listed in await registry.list_sensors():
        by_address[PublicKey.from_bytes(listed.public_key).address] = listed
    declarations, ids = [], []
    for address_ in terms.sensors:
        sensor = by_address.get(address_)
        if sensor is None:
            raise InvalidInput(f"sensor {address_} of agreement {address} is not in the registry")
        declarations.append(
            SensorDeclaration(
                PublicKey.from_bytes(sensor.public_key), sensor.sensor_type, tuple(sensor.fields)
            )
        )
        ids.append(sensor.id)
    spec = AgreementSpec(
        address=contract.address,
        chain_id=ledger.chain_id,
        terms=terms,
        sensors=tuple(declarations),
    )
    return LoadedAgreement(contract, spec, tuple(ids))


class ContractAgreementPort:
    """The :class:`~pervasive.committee.SubmissionPort` of an agreement, sending from ``signer``.

    Example: ``port = ContractAgreementPort(agreement, ledger.dev_signer(2))``.
    """

    def __init__(self, agreement: Agreement, signer: Signer) -> None:
        self.agreement = agreement
        self.signer = signer
        self._nodes = agreement.terms.nodes

    async def recorded(self, round: int) -> bool:
        """Whether window ``round`` has a record commitment on-chain."""
        return bytes(await self.agreement.contract.call("record_of", round)) != _ZERO

    async def submit(self, transaction: SignedUpdate) -> Receipt:
        """Send the update (``update`` or ``update_with_data`` by the agreement's QoS)."""
        return await self.agreement.submit(self.signer, transaction)

    def already_recorded(self, error: TransactionReverted) -> bool:
        """Whether ``error`` is the contract refusing a second update of a window."""
        return error.reason is not None and ALREADY_RECORDED in error.reason

    async def open_dispute(
        self, t: int, kind: DisputeKind, evidence: DisputeEvidence, data: bytes
    ) -> Receipt:
        """Open a dispute with the evidence's proofs and reveals (each signed by its author)."""
        proofs = []
        for signed in evidence.proofs:
            signature = signed.signatures.get(signed.author)
            if signature is None:
                continue
            proofs.append(
                ProofEvidence(
                    self._nodes.index(signed.author),
                    signed.proof.commitment,
                    signed.proof.window_hash,
                    signature,
                )
            )
        reveals = [
            RevealEvidence(
                self._nodes.index(r.author), r.reveal.result, r.reveal.secret, r.signature
            )
            for r in evidence.reveals
        ]
        return await self.agreement.dispute(
            self.signer, t, int(kind), proofs=proofs, reveals=reveals, data=data
        )
