"""The typed wrapper of ``vyper/notary.vy``: C_sp of paper 003 (section V-A step 3, V-C).

Consumers and providers lock their deposits in the notary contract; the committee moves
them only with a threshold BLS signature (eq. 6) that the contract checks on-chain with
the EIP-2537 precompiles (eq. 7). :func:`penalty_message` and :func:`release_message`
give the exact 32 bytes the committee signs (the contract computes the same bytes):
``keccak256(abi_encode(tag, chain_id, notary, id, from, to, amount))``.

Example::

    notary = await Notary.deploy(ledger, admin, NotaryTerms(group_key, 3, members,
                                                             period_end, 600, "bafy..."))
    await notary.with_signer(consumer).deposit(10**18)
    message = penalty_message(ledger.chain_id, notary.address, challenge_id,
                              consumer.address, provider.address, 10**17)
    await notary.penalize(challenge_id, consumer.address, provider.address, 10**17,
                          combine_signatures(partials))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pervasive.chain import Ledger, Receipt, Signer
from pervasive.contracts.contract import Contract
from pervasive.contracts.deployments import deploy
from pervasive.contracts.handle import ContractHandle
from pervasive.crypto import abi_encode, checksum_address, keccak256
from pervasive.crypto.bls import g1_to_eip2537, g2_to_eip2537
from pervasive.domain import check_account
from pervasive.errors import InvalidInput

__all__ = [
    "NOTARY",
    "PENALTY_TAG",
    "RELEASE_TAG",
    "Notary",
    "NotaryTerms",
    "eip2537_group_key",
    "eip2537_signature",
    "penalty_message",
    "release_id",
    "release_message",
]

NOTARY = "notary"
"""The contract's name: its source is ``vyper/notary.vy``."""

PENALTY_TAG = keccak256(b"pervasive.notary.penalty")
"""First word of a penalty message, so a penalty signature is never a release signature."""

RELEASE_TAG = keccak256(b"pervasive.notary.release")
"""First word of a release message."""

_MAX_MEMBERS = 16
_MAX_TRANSCRIPT = 128
_MESSAGE_TYPES = ["bytes32", "uint256", "address", "bytes32", "address", "address", "uint256"]


def _bytes32(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidInput(f"{what} must be 32 bytes")
    return value


def _amount(amount: int, what: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < 1 << 256:
        raise InvalidInput(f"the {what} must be a positive integer of wei, got {amount!r}")
    return amount


# Positional arguments in the order of the on-chain abi_encode (the design page fixes it).
def penalty_message(  # noqa: PLR0917
    chain_id: int, notary: str, challenge_id: bytes, cheater: str, victim: str, amount: int
) -> bytes:
    """The 32 bytes the committee signs to move ``amount`` of ``cheater``'s deposit to ``victim``.

    Example: ``penalty_message(31337, notary.address, challenge_id, c, p, 10**17)``.
    """
    values = [
        PENALTY_TAG,
        chain_id,
        check_account(notary, what="notary"),
        _bytes32(challenge_id, "a challenge id"),
        check_account(cheater, what="cheater"),
        check_account(victim, what="victim"),
        _amount(amount, "penalty"),
    ]
    return keccak256(abi_encode(_MESSAGE_TYPES, values))


def release_id(account: str, nonce: int) -> bytes:
    """The id of ``account``'s release number ``nonce``: ``keccak256(abi_encode(account, nonce))``.

    Example: ``release_id(consumer.address, 0)``.
    """
    if nonce < 0:
        raise InvalidInput(f"a release nonce is a non-negative integer, got {nonce}")
    return keccak256(abi_encode(["address", "uint256"], [check_account(account), nonce]))


def release_message(chain_id: int, notary: str, account: str, amount: int, nonce: int) -> bytes:
    """The 32 bytes the committee signs to return ``amount`` to ``account`` (release ``nonce``).

    Read the nonce with :meth:`Notary.release_nonce`. Example:
    ``release_message(31337, notary.address, consumer.address, 10**18, 0)``.
    """
    account = check_account(account)
    values = [
        RELEASE_TAG,
        chain_id,
        check_account(notary, what="notary"),
        release_id(account, nonce),
        account,
        account,
        _amount(amount),
    ]
    return keccak256(abi_encode(_MESSAGE_TYPES, values))


def eip2537_group_key(group_key: bytes) -> bytes:
    """A group key as the contract takes it: 96 compressed bytes become the 256-byte EIP-2537 form.

    256 bytes pass unchanged (the contract checks them). Example:
    ``len(eip2537_group_key(group_public_key(commitments))) == 256``.
    """
    if len(group_key) == 96:
        return g2_to_eip2537(group_key)
    if len(group_key) == 256:
        return group_key
    raise InvalidInput(
        f"a group key is 96 (compressed) or 256 (EIP-2537) bytes, got {len(group_key)}"
    )


def eip2537_signature(signature: bytes) -> bytes:
    """A BLS signature as the contract takes it: 48 compressed bytes become 128 EIP-2537 bytes.

    128 bytes pass unchanged (the contract checks them). Example:
    ``len(eip2537_signature(bls_sign(secret, message))) == 128``.
    """
    if len(signature) == 48:
        return g1_to_eip2537(signature)
    if len(signature) == 128:
        return signature
    raise InvalidInput(
        f"a BLS signature is 48 (compressed) or 128 (EIP-2537) bytes, got {len(signature)}"
    )


@dataclass(frozen=True)
class NotaryTerms:
    """The constructor arguments of a notary contract."""

    group_key: bytes
    """The committee's group key PK (eq. 5): 96 compressed or 256 EIP-2537 bytes."""
    threshold: int
    """t: how many members' partial signatures make a valid signature."""
    members: tuple[str, ...]
    """The members' secp256k1 addresses (the keys their messages are signed with)."""
    period_end: int
    """Unix time after which deposits may be released."""
    publish_window: int
    """T of section V-A: seconds P has to post the data index after a payment."""
    transcript: str
    """The CID of the DKG transcript, so anyone can audit how PK was made."""

    def __post_init__(self) -> None:
        if not 0 < len(self.members) <= _MAX_MEMBERS:
            raise InvalidInput(f"a committee has 1 to {_MAX_MEMBERS} members")
        if len({m.lower() for m in self.members}) != len(self.members):
            raise InvalidInput("the committee lists a member twice")
        if not 0 < self.threshold <= len(self.members):
            raise InvalidInput(f"the threshold must be in 1..{len(self.members)}")
        if self.publish_window <= 0:
            raise InvalidInput("the publish window T must be a positive number of seconds")
        if len(self.transcript.encode()) > _MAX_TRANSCRIPT:
            raise InvalidInput(f"the transcript CID is longer than {_MAX_TRANSCRIPT} bytes")


class Notary(ContractHandle):
    """A deployed notary contract (C_sp); writes are sent from ``signer``."""

    NAME = NOTARY

    @classmethod
    async def deploy(
        cls, ledger: Ledger, signer: Signer, terms: NotaryTerms, *, artifacts: Path | None = None
    ) -> Notary:
        """Deploy a notary for ``terms`` from ``signer``.

        Example: ``notary = await Notary.deploy(ledger, admin, terms)``.
        """
        members = [check_account(m, what="member") for m in terms.members]
        artifact = cls.artifact(artifacts)
        deployment = await deploy(
            ledger,
            signer,
            artifact,
            eip2537_group_key(terms.group_key),
            terms.threshold,
            members,
            terms.period_end,
            terms.publish_window,
            terms.transcript,
        )
        return cls(Contract(ledger, deployment.address, artifact.abi), signer)

    # -- writes -------------------------------------------------------------------------
    async def deposit(self, amount: int) -> Receipt:
        """Add ``amount`` wei to the signer's deposit. Example: ``await notary.deposit(10**18)``."""
        return await self._send("deposit", value=_amount(amount, "deposit"))

    async def penalize(
        self, challenge_id: bytes, cheater: str, victim: str, amount: int, signature: bytes
    ) -> Receipt:
        """Move ``min(amount, deposit)`` of ``cheater`` to ``victim``, signed by the committee.

        The contract refuses a settled challenge id ("challenge already settled") and a
        signature that does not verify ("invalid notary signature").
        Example: ``await notary.penalize(challenge_id, c, p, 10**17, signature)``.
        """
        cheater = check_account(cheater, what="cheater")
        victim = check_account(victim, what="victim")
        if cheater == victim:
            raise InvalidInput("the cheater and the victim must be different accounts")
        return await self._send(
            "penalize",
            _bytes32(challenge_id, "a challenge id"),
            cheater,
            victim,
            _amount(amount, "penalty"),
            eip2537_signature(signature),
        )

    async def release(self, account: str, amount: int, signature: bytes) -> Receipt:
        """Return ``amount`` of ``account``'s deposit to it (after ``period_end``).

        Example: ``await notary.release(c, 10**18, signature)``.
        """
        return await self._send(
            "release", check_account(account), _amount(amount), eip2537_signature(signature)
        )

    # -- reads --------------------------------------------------------------------------
    async def deposit_of(self, account: str) -> int:
        """The deposit of ``account`` in wei. Example: ``await notary.deposit_of(c)``."""
        return int(await self.contract.call("deposits", check_account(account)))

    async def release_nonce(self, account: str) -> int:
        """How many releases ``account`` has had: the nonce its next release message uses."""
        return int(await self.contract.call("release_nonces", check_account(account)))

    async def is_settled(self, challenge_id: bytes) -> bool:
        """Whether a penalty for ``challenge_id`` was accepted."""
        return bool(await self.contract.call("settled", _bytes32(challenge_id, "a challenge id")))

    async def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether the contract accepts ``signature`` over the 32-byte ``message`` (eth_call).

        Example: ``await notary.verify(penalty_message(...), signature)``.
        """
        return bool(
            await self.contract.call(
                "verify", _bytes32(message, "a notary message"), eip2537_signature(signature)
            )
        )

    async def group_key(self) -> bytes:
        """The committee's group key as stored (256-byte EIP-2537 G2)."""
        return bytes(await self.contract.call("GROUP_KEY"))

    async def period_end(self) -> int:
        """Unix time after which deposits may be released."""
        return int(await self.contract.call("PERIOD_END"))

    async def publish_window(self) -> int:
        """T: the seconds P has to post a data index."""
        return int(await self.contract.call("PUBLISH_WINDOW"))

    async def threshold(self) -> int:
        """t: the threshold of the committee's key."""
        return int(await self.contract.call("THRESHOLD"))

    async def members(self) -> tuple[str, ...]:
        """The members' secp256k1 addresses, as given at deployment."""
        return tuple(checksum_address(m) for m in await self.contract.call("members"))

    async def transcript(self) -> str:
        """The CID of the DKG transcript the group key came from."""
        return str(await self.contract.call("transcript"))
