"""The typed wrapper of ``vyper/deposit_oracle.vy``: C_o of paper 003 (section V-B, Algorithm 2).

The notary members check deposits off-chain (Algorithm 2 walks the transaction pool, which
a contract cannot) and each signs an EIP-712 ``DepositAttestation``; the oracle contract
accepts a payment when ``threshold`` members signed. This module builds the digest the
members sign (:func:`attestation_digest`, the same bytes the contract computes), signs it
(:func:`sign_attestation`) and packs signatures in the order the contract wants
(:func:`pack_signatures`: signers in strictly increasing address order).

Example::

    oracle = await DepositOracle.deploy(ledger, admin, members, 3, notary.address)
    signed = {key.address: sign_attestation(key, ledger.chain_id, oracle.address,
                                            consumer, provider, required, 0, expiry)
              for key in member_keys[:3]}
    await oracle.check(consumer, provider, required, 0, expiry, pack_signatures(signed))  # True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from pervasive.chain import Ledger, Signer
from pervasive.contracts.contract import Contract
from pervasive.contracts.deployments import deploy
from pervasive.contracts.handle import ContractHandle
from pervasive.crypto import (
    PrivateKey,
    Signature,
    TypedDataHash,
    checksum_address,
    domain_separator,
    sign_typed_data,
    struct_hash,
    typed_data_digest,
)
from pervasive.domain import check_account
from pervasive.errors import InvalidInput

__all__ = [
    "ATTESTATION_TYPE",
    "DEPOSIT_ORACLE",
    "MAX_ATTESTATION_SIGNERS",
    "ORACLE_DOMAIN_NAME",
    "ORACLE_DOMAIN_VERSION",
    "DepositAttestation",
    "DepositOracle",
    "Refusal",
    "attestation_digest",
    "pack_by_signer",
    "pack_signatures",
    "sign_attestation",
]

DEPOSIT_ORACLE = "deposit_oracle"
"""The contract's name: its source is ``vyper/deposit_oracle.vy``."""

ATTESTATION_TYPE = (
    "DepositAttestation(address consumer,address provider,uint256 required,"
    "uint256 counter,uint256 expiry)"
)
"""The EIP-712 type the members sign."""

ORACLE_DOMAIN_NAME = "pervasive deposit oracle"
"""The EIP-712 domain name (with chain id and the oracle as verifying contract)."""

ORACLE_DOMAIN_VERSION = "1"
"""The EIP-712 domain version."""

MAX_ATTESTATION_SIGNERS = 16
"""The most members (and signatures) the contract takes: ``Bytes[1040]`` = 16 x 65."""


class Refusal(IntEnum):
    """Why the oracle refuses an attestation (the contract's ``refusal`` codes)."""

    ACCEPTED = 0
    EXPIRED = 1
    MALFORMED = 2
    TOO_FEW = 3
    BAD_SIGNATURE = 4
    NOT_INCREASING = 5
    NOT_MEMBER = 6


@dataclass(frozen=True)
class DepositAttestation:
    """One attestation: ``consumer``'s deposit covers ``required`` for payment ``counter``."""

    consumer: str
    provider: str
    required: int
    counter: int
    expiry: int
    """The last block number at which the attestation counts."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "consumer", check_account(self.consumer, what="consumer"))
        object.__setattr__(self, "provider", check_account(self.provider, what="provider"))
        for name in ("required", "counter", "expiry"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 256:
                raise InvalidInput(f"the attestation's {name} must be a uint256, got {value!r}")


# Positional arguments in the order of the EIP-712 struct (the design page fixes it).
def attestation_digest(  # noqa: PLR0917
    chain_id: int,
    oracle: str,
    consumer: str,
    provider: str,
    required: int,
    counter: int,
    expiry: int,
) -> bytes:
    """The EIP-712 digest of a ``DepositAttestation`` for the oracle at ``oracle``.

    Example: ``attestation_digest(31337, oracle.address, c, p, 10**17, 0, 120)``.
    """
    attestation = DepositAttestation(consumer, provider, required, counter, expiry)
    return _typed(chain_id, oracle, attestation).digest


def _typed(chain_id: int, oracle: str, attestation: DepositAttestation) -> TypedDataHash:
    separator = domain_separator(
        ORACLE_DOMAIN_NAME, ORACLE_DOMAIN_VERSION, chain_id, check_account(oracle, what="oracle")
    )
    body = struct_hash(
        ATTESTATION_TYPE,
        [
            attestation.consumer,
            attestation.provider,
            attestation.required,
            attestation.counter,
            attestation.expiry,
        ],
    )
    return typed_data_digest(separator, body)


def sign_attestation(  # noqa: PLR0917
    key: PrivateKey,
    chain_id: int,
    oracle: str,
    consumer: str,
    provider: str,
    required: int,
    counter: int,
    expiry: int,
) -> bytes:
    """A member's 65-byte signature (``r || s || v``) of a ``DepositAttestation``.

    Example: ``sign_attestation(key, 31337, oracle.address, c, p, 10**17, 0, 120)``.
    """
    attestation = DepositAttestation(consumer, provider, required, counter, expiry)
    typed = _typed(chain_id, oracle, attestation)
    signature: Signature = sign_typed_data(key, typed)
    return signature.to_bytes()


def pack_signatures(signed: Mapping[str, bytes]) -> bytes:
    """Concatenate members' signatures (signer address -> 65 bytes) in increasing signer order.

    Example: ``pack_signatures({a.address: sig_a, b.address: sig_b})``.
    """
    return pack_by_signer(signed, entry_bytes=65, limit=MAX_ATTESTATION_SIGNERS)


def pack_by_signer(signed: Mapping[str, bytes], *, entry_bytes: int, limit: int) -> bytes:
    """Concatenate fixed-size entries (signer address -> bytes) in increasing signer order.

    The packing our threshold contracts read (this oracle, the oracle hub): one entry per
    signer, signers strictly increasing, so a contract refuses a duplicate without storage.

    Example: ``pack_by_signer({a.address: entry_a, b.address: entry_b}, entry_bytes=73,
    limit=16)``.
    """
    if len(signed) > limit:
        raise InvalidInput(f"the contract takes at most {limit} signatures")
    ordered = sorted(signed.items(), key=lambda item: int(check_account(item[0]), 16))
    for signer, entry in ordered:
        if len(entry) != entry_bytes:
            what = "r || s || v" if entry_bytes == 65 else "see the contract's packing"
            raise InvalidInput(f"the signed entry of {signer} is not {entry_bytes} bytes ({what})")
    return b"".join(entry for _, entry in ordered)


def _check_signatures(signatures: bytes) -> bytes:
    if len(signatures) % 65 or len(signatures) > 65 * MAX_ATTESTATION_SIGNERS:
        raise InvalidInput(
            f"signatures are up to {MAX_ATTESTATION_SIGNERS} concatenated 65-byte "
            f"signatures, got {len(signatures)} bytes: use pack_signatures(...)"
        )
    return signatures


class DepositOracle(ContractHandle):
    """A deployed deposit oracle (C_o); it only answers views."""

    NAME = DEPOSIT_ORACLE

    @classmethod
    async def deploy(
        cls,
        ledger: Ledger,
        signer: Signer,
        members: Sequence[str],
        threshold: int,
        notary: str,
        *,
        artifacts: Path | None = None,
    ) -> DepositOracle:
        """Deploy an oracle for ``members`` (any order: sorted here) and ``threshold``.

        Example: ``oracle = await DepositOracle.deploy(ledger, admin, members, 3, notary)``.
        """
        checked = sorted({check_account(m, what="member") for m in members}, key=_as_int)
        if len(checked) != len(members):
            raise InvalidInput("the member list names an address twice")
        if not 0 < len(checked) <= MAX_ATTESTATION_SIGNERS:
            raise InvalidInput(f"an oracle has 1 to {MAX_ATTESTATION_SIGNERS} members")
        if not 0 < threshold <= len(checked):
            raise InvalidInput(f"the threshold must be in 1..{len(checked)}")
        artifact = cls.artifact(artifacts)
        deployment = await deploy(
            ledger, signer, artifact, checked, threshold, check_account(notary, what="notary")
        )
        return cls(Contract(ledger, deployment.address, artifact.abi))

    async def check(self, attestation: DepositAttestation, signatures: bytes) -> bool:
        """Whether the contract accepts ``signatures`` on ``attestation`` (at the latest block).

        Example: ``await oracle.check(DepositAttestation(c, p, 10**17, 0, 120), packed)``.
        """
        return bool(await self.contract.call("check", *_args(attestation, signatures)))

    async def refusal(self, attestation: DepositAttestation, signatures: bytes) -> Refusal:
        """Why the contract refuses (``Refusal.ACCEPTED`` when it does not)."""
        return Refusal(int(await self.contract.call("refusal", *_args(attestation, signatures))))

    async def digest(self, attestation: DepositAttestation) -> bytes:
        """The digest as the contract computes it (equal to :func:`attestation_digest`)."""
        a = attestation
        raw = await self.contract.call(
            "attestation_digest", a.consumer, a.provider, a.required, a.counter, a.expiry
        )
        return bytes(raw)

    async def members(self) -> tuple[str, ...]:
        """The members, in increasing address order."""
        return tuple(checksum_address(m) for m in await self.contract.call("members"))

    async def threshold(self) -> int:
        """How many member signatures an attestation needs."""
        return int(await self.contract.call("THRESHOLD"))


def _as_int(address: str) -> int:
    return int(address, 16)


def _args(attestation: DepositAttestation, signatures: bytes) -> tuple[object, ...]:
    a = attestation
    return (
        a.consumer,
        a.provider,
        a.required,
        a.counter,
        a.expiry,
        _check_signatures(signatures),
    )
