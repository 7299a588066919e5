"""The registered world of the agreement tests: registry, factory, two parties, two nodes, a lock.

Every test gets a fresh chain (the shared ``ledger`` fixture: embedded and anvil). The
world is built once per test by :func:`world`; :meth:`World.agreement` creates an
agreement, signed by both parties, with the terms a test asks for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from pervasive.chain import Ledger, Signer
from pervasive.contracts import Agreement, AgreementFactory, Registry
from pervasive.crypto import PrivateKey, Signature, keccak256
from pervasive.domain import AgreementTerms, QoS, Reaction, ReactionKind, SensorField

LOCK_FIELDS = [SensorField.parse("unlocked:bool"), SensorField.parse("time:uint64")]
SENSOR_KEY = PrivateKey(bytes.fromhex("5e" * 32))


@dataclass
class World:
    ledger: Ledger
    registry: Registry
    factory: AgreementFactory
    deployer: Signer
    parties: tuple[Signer, ...]
    nodes: tuple[Signer, ...]
    sensor: PrivateKey

    @staticmethod
    def key(signer: Signer) -> PrivateKey:
        return PrivateKey(signer.private_key)

    def terms(self, **changes: object) -> AgreementTerms:
        base = AgreementTerms(
            parties=tuple(p.address for p in self.parties),
            sensors=(self.sensor.address,),
            start_points=(0,),
            window_size=20,
            sliding_factor=20,
            function_name="rental_time",
            function_hash=keccak256(b"def rental_time(w): ..."),
            nodes=tuple(n.address for n in self.nodes),
            node_parties=(0, 1),
            qos=QoS.NO_PROOF,
            reward=1_000,
            reaction=Reaction(ReactionKind.NONE),
            expiry=int(time.time()) + 86_400 * 365,
        )
        return replace(base, **changes)  # type: ignore[arg-type]

    def approvals(self, terms: AgreementTerms) -> list[Signature]:
        return [self.factory.sign_terms(self.key(p), terms) for p in self.parties]

    async def agreement(self, **changes: object) -> Agreement:
        terms = self.terms(**changes)
        return await self.factory.create(self.deployer, terms, ["lock-1"], self.approvals(terms))
