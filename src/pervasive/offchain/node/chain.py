"""The node's view of its agreement on-chain: the spec it runs, and the port it writes through.

:func:`load_agreement` reads the agreement's terms (``Agreement.at``) and the sensor
declarations of the registry and builds the :class:`AgreementSpec` the sans-I/O
protocol runs, plus the sensors' registry ids (their MQTT device ids).
:class:`ContractAgreementPort` is the committee's
:class:`~pervasive.committee.SubmissionPort` of :class:`~pervasive.domain.SignedUpdate`
over the :class:`~pervasive.contracts.Agreement` wrapper: it asks whether a window is
recorded, sends updates and opens disputes with signed evidence, all from the node's
own account.

Reorganisations: an update counts as sent (the committee's row ``recorded``) only once
it is ``confirmations`` blocks deep in the canonical chain, and a window counts as
recorded by someone else only when its record is that deep too. The port signs an
update once per window and keeps the signed bytes while it waits: a reorganisation
that drops them makes it send the same bytes again (same nonce, applied at most once);
if another transaction of the node's account took that nonce, it says so in the log,
counts it in :attr:`ContractAgreementPort.reorganised` and signs anew (the contract
refuses a second update of a window, so nothing is applied twice).

Example::

    loaded = await load_agreement(ledger, registry, "0xAgreement")
    port = ContractAgreementPort(loaded.contract, node_signer)
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pervasive.chain import ContractCall, Finality, Ledger, PendingTransaction, Receipt, Signer
from pervasive.committee import SubmissionPort
from pervasive.contracts import Agreement, ProofEvidence, Registry, RevealEvidence
from pervasive.crypto import PublicKey
from pervasive.domain import Sensor, SignedUpdate
from pervasive.errors import InvalidInput, TransactionReverted, TransactionTimeout
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
_RECORD_POLL = (0.05, 1.0)  # seconds between looks at a shallow record: first, at most

_log = logging.getLogger(__name__)


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

    ``confirmations``: blocks on top of an update's block before it counts; ``None``
    takes the ledger's (``Settings.confirmations``, 0 by default: the receipt alone, right
    for the embedded chain and anvil, where nothing reorganises on its own).

    Example: ``port = ContractAgreementPort(agreement, ledger.dev_signer(2), confirmations=2)``.
    """

    def __init__(
        self, agreement: Agreement, signer: Signer, *, confirmations: int | None = None
    ) -> None:
        if confirmations is not None and confirmations < 0:
            raise InvalidInput(f"confirmations must be 0 or more, got {confirmations}")
        self.agreement = agreement
        self.signer = signer
        self._confirmations = confirmations
        self._nodes = agreement.terms.nodes
        self._signed: dict[int, PendingTransaction] = {}
        self.reorganised: Counter[str] = Counter()
        """Updates a reorganisation touched: ``resent`` (the same signed bytes sent again)
        and ``displaced`` (their nonce taken by another transaction: signed anew)."""

    @property
    def confirmations(self) -> int:
        """Blocks on top of an update's block before it counts."""
        if self._confirmations is not None:
            return self._confirmations
        return self.agreement.ledger.options.confirmations

    async def recorded(self, round: int) -> bool:
        """Whether window ``round`` has a record commitment ``confirmations`` blocks deep."""
        block: int | str = "latest"
        if self.confirmations > 0:
            block = max(await self.agreement.ledger.block_number() - self.confirmations, 0)
        return await self._record_at(round, block) != _ZERO

    async def _record_at(self, t: int, block: int | str) -> bytes:
        function = self.agreement.contract.function("record_of", 1)
        data = await self.agreement.ledger.call(
            self.agreement.address, function.encode([t]), block=block
        )
        return bytes(function.decode_output(data))

    async def submit(self, transaction: SignedUpdate) -> Receipt:
        """Send the update (``update`` or ``update_with_data`` by the agreement's QoS).

        Returns once the update is ``confirmations`` blocks deep; re-sends it when a
        reorganisation drops it. A window recorded by another transaction raises the
        contract's "window already updated" once that record is deep enough (and sends
        again if a reorganisation removes it first).
        """
        t = transaction.update.window
        manager = self.agreement.ledger.transactor(self.signer)
        while True:
            pending = self._signed.get(t)
            if pending is None:
                call = ContractCall(
                    self.agreement.address,
                    self.agreement.update_call(
                        transaction.update, transaction.signatures, transaction.data or None
                    ),
                )
                try:
                    pending = await manager.prepare(call)
                except TransactionReverted as exc:
                    if self.already_recorded(exc) and not await self._record_stays(t):
                        continue  # the other record was reorganised away: send ours
                    raise
                self._signed[t] = pending
                await manager.broadcast(pending.hashes[0], pending.raw)
            tx_hash = pending.hashes[0]
            try:
                settled = await manager.wait_final(
                    tx_hash, pending.raw, confirmations=self.confirmations
                )
            except TransactionReverted as exc:  # mined and reverted: its nonce is spent
                del self._signed[t]
                if self.already_recorded(exc) and not await self._record_stays(t):
                    continue
                raise
            if settled.resent:
                self.reorganised["resent"] += 1
                _log.warning(
                    "the update of window %d (%s) was reorganised away; sent it again", t, tx_hash
                )
            if settled.finality is Finality.FINAL and settled.receipt is not None:
                del self._signed[t]
                return settled.receipt
            del self._signed[t]
            self.reorganised["displaced"] += 1
            _log.warning(
                "the update of window %d (%s) was reorganised away and another transaction of "
                "%s took its nonce; signing it anew",
                t, tx_hash, self.signer.address,
            )  # fmt: skip

    async def _record_stays(self, t: int) -> bool:
        """Wait until window ``t``'s record is deep enough (``True``) or gone (``False``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.agreement.ledger.options.receipt_timeout
        delay = _RECORD_POLL[0]
        while True:
            if await self.recorded(t):
                return True
            if await self._record_at(t, "latest") == _ZERO:
                return False
            if loop.time() > deadline:
                raise TransactionTimeout(
                    f"window {t} is recorded on-chain but not yet {self.confirmations} blocks "
                    "deep; the update is tried again on the next pass"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RECORD_POLL[1])

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
