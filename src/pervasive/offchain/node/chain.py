"""The node's view of its agreement on-chain: the spec it runs, and the port it writes through.

:func:`load_agreement` reads the agreement's terms (``Agreement.at``) and the sensor
declarations of the registry and builds the :class:`AgreementSpec` the sans-I/O
protocol runs, plus the sensors' registry ids (their MQTT device ids).
:class:`ContractAgreementPort` is the :class:`~pervasive.offchain.node.submitter.AgreementPort`
over the :class:`~pervasive.contracts.Agreement` wrapper: it asks whether a
window is recorded, sends updates and opens disputes with signed evidence, all from
the node's own account.

Example::

    loaded = await load_agreement(ledger, registry, "0xAgreement")
    port = ContractAgreementPort(loaded.contract, node_signer)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pervasive.chain import Ledger, Receipt, Signer
from pervasive.contracts import (
    Agreement,
    ProofEvidence,
    Registry,
    RevealEvidence,
    Sensor,
    Signing,
)
from pervasive.crypto import PublicKey
from pervasive.errors import InvalidInput
from pervasive.offchain.agreement import AgreementSpec, QoS, SigningMode
from pervasive.offchain.declaration import SensorDeclaration
from pervasive.offchain.node.submitter import OnchainUpdate
from pervasive.offchain.outcomes import DisputeEvidence, DisputeKind
from pervasive.offchain.window import WindowSpec

__all__ = ["ContractAgreementPort", "LoadedAgreement", "load_agreement"]

_ZERO = bytes(32)


@dataclass(frozen=True)
class LoadedAgreement:
    """An agreement as a node needs it: the wrapper, the protocol spec, the sensor ids."""

    contract: Agreement
    spec: AgreementSpec
    sensor_ids: tuple[str, ...]


MODE_OF = {
    Signing.RING: SigningMode.RING,
    Signing.LEADER: SigningMode.LEADER,
    Signing.FAST: SigningMode.FAST,
}
"""The off-chain signing mode of each on-chain ``signing`` term."""
SIGNING_OF = {mode: signing for signing, mode in MODE_OF.items()}
"""The on-chain ``signing`` term of each off-chain signing mode."""


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
            SensorDeclaration.create(
                sensor.public_key,
                sensor.sensor_type,
                [(f.name, f.type.value) for f in sensor.fields],
            )
        )
        ids.append(sensor.id)
    spec = AgreementSpec(
        address=contract.address,
        chain_id=ledger.chain_id,
        nodes=terms.nodes,
        sensors=tuple(declarations),
        window=WindowSpec(
            terms.sensors, terms.start_points, terms.sliding_factor, terms.window_size
        ),
        function_name=terms.function_name,
        function_hash=terms.function_hash,
        qos=QoS(int(terms.qos)),
        mode=MODE_OF[terms.signing],
        static_leader=terms.leader,
        parties=terms.parties,
    )
    return LoadedAgreement(contract, spec, tuple(ids))


class ContractAgreementPort:
    """:class:`AgreementPort` over the Agreement wrapper, sending from ``signer``.

    Example: ``port = ContractAgreementPort(agreement, ledger.dev_signer(2))``.
    """

    def __init__(self, agreement: Agreement, signer: Signer) -> None:
        self.agreement = agreement
        self.signer = signer
        self._nodes = agreement.terms.nodes

    async def recorded(self, t: int) -> bool:
        """Whether window ``t`` has a record commitment on-chain."""
        return bytes(await self.agreement.contract.call("record_of", t)) != _ZERO

    async def submit_update(self, update: OnchainUpdate) -> Receipt:
        """Send ``update`` (``update`` or ``update_with_data`` by the agreement's QoS)."""
        data = update.data if update.data else None
        payload = self.agreement.update_payload(
            update.t, update.result, update.window_hash, proofs_hash=update.proofs_hash, data=data
        )
        return await self.agreement.update(self.signer, payload, update.signatures, data)

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
