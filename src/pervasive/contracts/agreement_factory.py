"""The typed Python wrapper of ``vyper/agreement_factory.vy``: agreements signed by all parties.

Paper 002, section 3: ``a = (U_a, S_a, Q_0, f_a, I_a, r_a) : U_a``. The factory checks
the parties, nodes and sensors in the registry and every party's EIP-712 signature over
the :class:`~pervasive.contracts.agreement_terms.AgreementTerms`, then creates the
agreement from an ERC-5202 blueprint, active from birth. See ``docs/agreement-contract.md``.

Example::

    factory = await AgreementFactory.open(ledger, deployer, registry)
    approvals = [factory.sign_terms(key, terms) for key in party_keys]   # each party, locally
    agreement = await factory.create(signer, terms, ["lock-1"], approvals)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pervasive.chain import Ledger, Signer
from pervasive.contracts.agreement import AGREEMENT, Agreement
from pervasive.contracts.agreement_records import compact_signature
from pervasive.contracts.compiler import Artifact, compile_contract
from pervasive.contracts.contract import Contract
from pervasive.contracts.deployments import deploy
from pervasive.contracts.registry import Registry
from pervasive.crypto import PrivateKey, PublicKey, Signature, checksum_address
from pervasive.domain import AgreementTerms
from pervasive.errors import InvalidInput

__all__ = ["AGREEMENT_FACTORY", "AgreementFactory", "blueprint_deploy_code"]

AGREEMENT_FACTORY = "agreement_factory"
"""The factory's contract name (``vyper/agreement_factory.vy``)."""


def blueprint_deploy_code(init_code: bytes) -> bytes:
    """Deploy code of an ERC-5202 blueprint (``0xFE7100`` preamble) holding ``init_code``.

    Example: ``await deploy_raw(ledger, signer, blueprint_deploy_code(artifact.bytecode))``.
    """
    container = b"\xfe\x71\x00" + init_code
    if len(container) > 0xFFFF:
        raise InvalidInput("a blueprint holds at most 65535 bytes")
    return b"\x61" + len(container).to_bytes(2, "big") + bytes.fromhex("3d81600a3d39f3") + container


class AgreementFactory:
    """The deployed factory; creates agreements from the blueprint."""

    def __init__(self, contract: Contract, registry: Registry, artifacts: Path | None) -> None:
        self.contract = contract
        self.registry = registry
        self._artifacts = artifacts

    @classmethod
    async def open(
        cls, ledger: Ledger, signer: Signer, registry: Registry, *, artifacts: Path | None = None
    ) -> AgreementFactory:
        """The registry's factory; deploys blueprint and factory and registers them if unset.

        ``signer`` must be the registry's deployer when no factory is set yet.

        Example: ``factory = await AgreementFactory.open(ledger, deployer, registry)``.
        """
        artifact = compile_contract(AGREEMENT_FACTORY, cache_dir=artifacts)
        current = checksum_address(await registry.contract.call("agreement_factory"))
        if int(current, 16) != 0:
            return cls(Contract(ledger, current, artifact.abi), registry, artifacts)
        init_code = compile_contract(AGREEMENT, cache_dir=artifacts).bytecode
        blueprint = Artifact("agreement_blueprint", (), blueprint_deploy_code(init_code), "")
        blueprint_at = (await deploy(ledger, signer, blueprint)).address
        factory_at = (
            await deploy(ledger, signer, artifact, registry.address, blueprint_at)
        ).address
        await registry.contract.transact(signer, "set_agreement_factory", factory_at)
        return cls(Contract(ledger, factory_at, artifact.abi), registry, artifacts)

    @property
    def address(self) -> str:
        """The factory's address (the ``verifyingContract`` of the parties' signatures)."""
        return self.contract.address

    def sign_terms(self, key: PrivateKey, terms: AgreementTerms) -> Signature:
        """A party's EIP-712 approval of ``terms`` for this factory (local, nothing sent)."""
        return terms.sign(key, self.contract.ledger.chain_id, self.address)

    async def create(
        self,
        signer: Signer,
        terms: AgreementTerms,
        sensor_ids: Sequence[str],
        approvals: Sequence[Signature],
    ) -> Agreement:
        """Create agreement ``terms`` signed by every party (``approvals`` in party order).

        ``sensor_ids`` are the registry ids of ``terms.sensors``. Raises
        :class:`InvalidInput` when a sensor id does not belong to the address given or an
        approval is missing; the chain refuses a bad signature or an unregistered entity
        (:class:`TransactionReverted` with the reason).

        Example: ``agreement = await factory.create(signer, terms, ["lock-1"], [sig_a, sig_b])``.
        """
        if len(sensor_ids) != len(terms.sensors):
            raise InvalidInput("give one registry id per sensor of the terms")
        if len(approvals) != len(terms.parties):
            raise InvalidInput("every party must sign the terms: give one approval per party")
        keys = []
        for sensor_id, address in zip(sensor_ids, terms.sensors, strict=True):
            declared = await self.registry.get_sensor(sensor_id)
            key = PublicKey.from_bytes(declared.public_key)
            if key.address != address:
                raise InvalidInput(f"sensor {sensor_id!r} has address {key.address}, not {address}")
            keys.append(key.to_bytes())
        sigs = [compact_signature(a) for a in approvals]
        receipt = await self.contract.transact(
            signer, "create", terms.as_abi(), list(sensor_ids), keys, sigs
        )
        [created] = self.contract.events(receipt, "AgreementCreated")
        return await Agreement.at(
            self.contract.ledger, str(created.args["agreement"]), artifacts=self._artifacts
        )
