"""What every wrapper of one of our contracts shares: its artifact, address and signer.

A wrapper (``Notary``, ``UserContract``, ``DataIndex``, ``Htlc``, ``AssetTracking``)
subclasses :class:`ContractHandle`, names its contract in ``NAME`` and adds the
contract's own reads and writes; finding, binding and sending are written once here.

Example::

    index = await DataIndex.open(ledger, provider)           # deployed once per chain
    same = DataIndex.at(ledger, index.address).with_signer(other)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from pervasive.chain import ContractCall, Ledger, Receipt, Signer
from pervasive.contracts.compiler import Artifact, compile_contract
from pervasive.contracts.contract import Contract
from pervasive.contracts.deployments import DeploymentBook, code_hash_at, ensure_deployed
from pervasive.crypto import checksum_address
from pervasive.errors import InvalidInput, NotFound

__all__ = ["ContractHandle"]


class ContractHandle:
    """A deployed contract named ``NAME``; writes are sent from ``signer``."""

    NAME: ClassVar[str]
    """The contract's name: its source ``vyper/<NAME>.vy`` and its deployment record key."""
    MISSING: ClassVar[str] = ""
    """What :meth:`find` tells the user to do when the contract is not deployed yet."""

    def __init__(self, contract: Contract, signer: Signer | None = None) -> None:
        self.contract = contract
        self.signer = signer

    @classmethod
    def artifact(cls, artifacts: Path | None = None) -> Artifact:
        """The compiled contract (cached in ``artifacts`` when given)."""
        return compile_contract(cls.NAME, cache_dir=artifacts)

    @classmethod
    async def open(
        cls,
        ledger: Ledger,
        signer: Signer,
        *,
        artifacts: Path | None = None,
        book: DeploymentBook | None = None,
    ) -> Self:
        """The contract recorded in ``book`` for this chain, deployed by ``signer`` if needed.

        For contracts deployed without constructor arguments (one per chain).
        """
        artifact = cls.artifact(artifacts)
        deployment, _ = await ensure_deployed(
            ledger, signer, artifact, book or DeploymentBook(":memory:")
        )
        return cls(Contract(ledger, deployment.address, artifact.abi), signer)

    @classmethod
    async def find(
        cls, ledger: Ledger, book: DeploymentBook, *, artifacts: Path | None = None
    ) -> Self:
        """The contract already deployed on this chain; :class:`NotFound` when there is none."""
        artifact = cls.artifact(artifacts)
        known = book.get(ledger.chain_id, cls.NAME)
        if known is None or await code_hash_at(ledger, known.address) != known.code_hash:
            hint = f": {cls.MISSING}" if cls.MISSING else ""
            raise NotFound(
                f"no {cls.NAME.replace('_', '-')} contract is deployed on chain "
                f"{ledger.chain_id}{hint}"
            )
        return cls(Contract(ledger, known.address, artifact.abi))

    @classmethod
    def at(cls, ledger: Ledger, address: str, signer: Signer | None = None) -> Self:
        """The contract at ``address`` (no check that code is there)."""
        return cls(Contract(ledger, checksum_address(address), cls.artifact().abi), signer)

    def with_signer(self, signer: Signer) -> Self:
        """The same contract, sending writes from ``signer``."""
        return type(self)(self.contract, signer)

    @property
    def address(self) -> str:
        """The contract's address."""
        return self.contract.address

    def _signer(self) -> Signer:
        if self.signer is None:
            raise InvalidInput("this handle has no signer: use with_signer(...) first")
        return self.signer

    async def _send(
        self, function: str, *args: Any, value: int = 0, gas: int | None = None
    ) -> Receipt:
        """Send ``function(*args)`` from the signer and wait for its receipt."""
        call = ContractCall(
            to=self.address, data=self.contract.encode(function, *args), value=value, gas=gas
        )
        receipt: Receipt = await self.contract.ledger.transactor(self._signer()).transact(call)
        return receipt
