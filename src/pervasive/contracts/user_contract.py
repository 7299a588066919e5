"""The typed wrapper of ``vyper/user_contract.vy``: C_u, Algorithm 1 of paper 003 (section V-B).

A consumer pays a provider through the user contract: the required deposit is
``amount * coef_percent / 100`` (Algorithm 1's ``calculate``), the deposit oracle must
accept ``threshold`` notary attestations for the consumer's next payment number
(``counters(consumer)``), and the amount is credited to the provider, who withdraws it
when it likes (pull: a payment then costs about 56,000 gas with 3 signatures, and no
provider can make payments to it fail).
Every payment has an id, :func:`payment_id`, which the provider's data index and any
challenge refer to.

Example::

    user = await UserContract.deploy(ledger, admin, oracle.address, coef_percent=150)
    counter = await user.counter(consumer.address)
    receipt = await user.with_signer(consumer).pay(provider, 10**17, counter, expiry, packed)
    (payment,) = user.payments(receipt)
    payment.payment_id == payment_id(ledger.chain_id, user.address, consumer.address, counter)
    await user.with_signer(provider_signer).withdraw()     # the provider collects
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pervasive.chain import ContractCall, Ledger, Receipt, Signer
from pervasive.contracts.contract import Contract
from pervasive.contracts.deployments import deploy
from pervasive.contracts.deposit_oracle import MAX_ATTESTATION_SIGNERS
from pervasive.contracts.handle import ContractHandle
from pervasive.crypto import abi_encode, checksum_address, keccak256
from pervasive.domain import check_account
from pervasive.errors import InvalidInput

__all__ = ["USER_CONTRACT", "Payment", "UserContract", "payment_id", "required_deposit"]

USER_CONTRACT = "user_contract"
"""The contract's name: its source is ``vyper/user_contract.vy``."""


def payment_id(chain_id: int, user_contract: str, consumer: str, counter: int) -> bytes:
    """``keccak256(abi_encode(chain_id, user_contract, consumer, counter))``: a payment's id.

    Example: ``payment_id(31337, user.address, consumer.address, 0)``.
    """
    if counter < 0:
        raise InvalidInput(f"a payment counter is a non-negative integer, got {counter}")
    values = [
        chain_id,
        check_account(user_contract, what="user contract"),
        check_account(consumer, what="consumer"),
        counter,
    ]
    return keccak256(abi_encode(["uint256", "address", "address", "uint256"], values))


def required_deposit(amount: int, coef_percent: int) -> int:
    """Algorithm 1's ``calculate(amount, coef)``: ``amount * coef_percent // 100`` (as on-chain).

    Example: ``required_deposit(10**17, 150) == 15 * 10**16``.
    """
    if amount < 0 or coef_percent <= 0:
        raise InvalidInput("the amount must be >= 0 and coef_percent > 0")
    return amount * coef_percent // 100


@dataclass(frozen=True)
class Payment:
    """A ``Paid`` event: a consumer's payment number ``counter`` to a provider."""

    payment_id: bytes
    consumer: str
    provider: str
    amount: int
    counter: int
    required: int
    """The deposit the oracle attested for this payment."""
    block_number: int
    transaction_hash: str


class UserContract(ContractHandle):
    """A deployed user contract (C_u); payments are sent from ``signer``."""

    NAME = USER_CONTRACT

    @classmethod
    async def deploy(
        cls,
        ledger: Ledger,
        signer: Signer,
        oracle: str,
        coef_percent: int,
        *,
        artifacts: Path | None = None,
    ) -> UserContract:
        """Deploy a user contract asking ``oracle``; a payment needs coef_percent % as deposit.

        Example: ``user = await UserContract.deploy(ledger, admin, oracle.address, 150)``.
        """
        if coef_percent <= 0:
            raise InvalidInput(f"coef_percent must be a positive integer, got {coef_percent}")
        artifact = cls.artifact(artifacts)
        deployment = await deploy(
            ledger, signer, artifact, check_account(oracle, what="oracle"), coef_percent
        )
        return cls(Contract(ledger, deployment.address, artifact.abi), signer)

    async def pay(
        self, provider: str, amount: int, counter: int, expiry: int, signatures: bytes
    ) -> Receipt:
        """Pay ``amount`` wei to ``provider`` as the signer's payment number ``counter``.

        ``signatures`` are the members' attestations packed by ``pack_signatures``. The
        contract reverts "wrong counter: ..." or "the deposit oracle refused"; no ether
        moves then. Example: ``await user.pay(provider, 10**17, 0, expiry, packed)``.
        """
        if self.signer is None:
            raise InvalidInput("this handle has no signer: use with_signer(...) first")
        provider = check_account(provider, what="provider")
        if provider == self.signer.address:
            raise InvalidInput("a consumer cannot pay itself: name another provider")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise InvalidInput(f"pay a positive integer amount of wei, got {amount!r}")
        if counter < 0 or expiry < 0:
            raise InvalidInput("the counter and the expiry block are non-negative integers")
        if len(signatures) % 65 or len(signatures) > 65 * MAX_ATTESTATION_SIGNERS:
            raise InvalidInput("signatures must be packed 65-byte signatures: use pack_signatures")
        data = self.contract.encode("pay", provider, counter, expiry, signatures)
        call = ContractCall(to=self.address, data=data, value=amount)
        receipt: Receipt = await self.contract.ledger.transactor(self.signer).transact(call)
        return receipt

    async def withdraw(self) -> Receipt:
        """Send the signer (a provider) everything it was paid and has not withdrawn.

        Raises :class:`InvalidInput` when there is nothing to withdraw.
        Example: ``await user.with_signer(provider).withdraw()``.
        """
        if self.signer is None:
            raise InvalidInput("this handle has no signer: use with_signer(...) first")
        if await self.credit(self.signer.address) == 0:
            raise InvalidInput(f"{self.signer.address} has no payments to withdraw")
        return await self.contract.transact(self.signer, "withdraw")

    async def credit(self, provider: str) -> int:
        """What ``provider`` was paid and has not yet withdrawn, in wei."""
        return int(await self.contract.call("credit", check_account(provider, what="provider")))

    async def counter(self, consumer: str) -> int:
        """The number the consumer's next payment must carry."""
        return int(await self.contract.call("counters", check_account(consumer)))

    async def required_deposit(self, amount: int) -> int:
        """The deposit a payment of ``amount`` requires, as the contract computes it."""
        return int(await self.contract.call("required_deposit", amount))

    async def oracle(self) -> str:
        """The deposit oracle this contract asks."""
        return checksum_address(await self.contract.call("ORACLE"))

    def payments(self, receipt: Receipt) -> list[Payment]:
        """The ``Paid`` events of this contract in ``receipt``."""
        return [
            Payment(
                payment_id=bytes(e.args["payment_id"]),
                consumer=e.args["consumer"],
                provider=e.args["provider"],
                amount=int(e.args["amount"]),
                counter=int(e.args["counter"]),
                required=int(e.args["required"]),
                block_number=receipt.block_number,
                transaction_hash=receipt.transaction_hash,
            )
            for e in self.contract.events(receipt, "Paid")
        ]
