"""The notary's serving-phase messages and the penalty's way onto the chain (paper 003, V-C).

After the key generation (envelope kinds 1-4, :mod:`pervasive.crosschain.dkg_bodies`)
the members exchange, in the same session and domain, round :data:`SERVING_ROUND`:

============================ =============================================================
kind                         body
============================ =============================================================
PARTIAL_SIGNATURE (10)       :class:`~pervasive.crosschain.signing.PartialSignature`
CHALLENGE (11)               :class:`ChallengeBody` ``(string kind, bytes32 payment_id,
                             bytes evidence)``: a challenge a member received over HTTP,
                             relayed so a challenger needs to reach one honest member only
CONTRACTS (12)               :class:`ContractsBody` ``(address notary, address oracle,
                             address user_contract, uint256 from_block)``: the convener's
                             deployment, which every member checks on-chain
============================ =============================================================

A combined penalty signature becomes a :class:`PenaltyTransaction`; the committee kit's
:class:`~pervasive.committee.Submitter` sends exactly one per challenge through
:class:`NotaryPenaltyPort` (C_sp refuses a settled challenge id: "challenge already
settled").

Example::

    body = decode_serving_body(envelope)      # PartialSignature | ChallengeBody | ContractsBody
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pervasive.chain import Receipt
from pervasive.committee import Envelope
from pervasive.contracts.notary import Notary
from pervasive.crosschain.challenge import Challenge, ChallengeKind
from pervasive.crosschain.committee_spec import CommitteeContracts
from pervasive.crosschain.signing import PARTIAL_SIGNATURE, PartialSignature
from pervasive.crypto import abi_decode, abi_encode, checksum_address
from pervasive.errors import InvalidInput, TransactionReverted

__all__ = [
    "SERVING_ROUND",
    "ChallengeBody",
    "ContractsBody",
    "NotaryPenaltyPort",
    "PenaltyTransaction",
    "ServingBody",
    "ServingKind",
    "challenge_round",
    "decode_serving_body",
]

SERVING_ROUND = 1
"""The envelope round of every message after the key generation (round 0)."""


class ServingKind(enum.IntEnum):
    """Envelope kinds of the serving phase."""

    PARTIAL_SIGNATURE = PARTIAL_SIGNATURE
    CHALLENGE = 11
    CONTRACTS = 12


@dataclass(frozen=True)
class ChallengeBody:
    """A relayed challenge."""

    challenge: Challenge

    def encode(self) -> bytes:
        """ABI ``(string, bytes32, bytes)``."""
        c = self.challenge
        return abi_encode(["string", "bytes32", "bytes"], [c.kind.value, c.payment_id, c.evidence])

    @classmethod
    def decode(cls, data: bytes) -> ChallengeBody:
        """Strict decoding; :class:`InvalidInput` otherwise."""
        kind, payment_id, evidence = abi_decode(["string", "bytes32", "bytes"], data)
        try:
            challenge_kind = ChallengeKind(kind)
        except ValueError as exc:
            raise InvalidInput(f"unknown challenge kind {kind!r}") from exc
        # a relayed challenge passes the same checks as one received over HTTP
        return cls(Challenge.checked(challenge_kind, bytes(payment_id), bytes(evidence)))


@dataclass(frozen=True)
class ContractsBody:
    """The contracts the convener deployed."""

    contracts: CommitteeContracts

    def encode(self) -> bytes:
        """ABI ``(address, address, address, uint256)``."""
        c = self.contracts
        return abi_encode(
            ["address", "address", "address", "uint256"],
            [c.notary, c.oracle, c.user_contract, c.from_block],
        )

    @classmethod
    def decode(cls, data: bytes) -> ContractsBody:
        """Strict decoding; :class:`InvalidInput` otherwise."""
        notary, oracle, user, from_block = abi_decode(
            ["address", "address", "address", "uint256"], data
        )
        return cls(
            CommitteeContracts(
                checksum_address(notary),
                checksum_address(oracle),
                checksum_address(user),
                int(from_block),
            )
        )


ServingBody = PartialSignature | ChallengeBody | ContractsBody


def decode_serving_body(envelope: Envelope) -> ServingBody:
    """Decode the body of a serving-phase envelope by its kind (:class:`InvalidInput` else)."""
    if envelope.round != SERVING_ROUND:
        raise InvalidInput(f"serving messages are round {SERVING_ROUND}, not {envelope.round}")
    if envelope.kind == ServingKind.PARTIAL_SIGNATURE:
        return PartialSignature.decode(envelope.body)
    if envelope.kind == ServingKind.CHALLENGE:
        return ChallengeBody.decode(envelope.body)
    if envelope.kind == ServingKind.CONTRACTS:
        return ContractsBody.decode(envelope.body)
    raise InvalidInput(f"unknown notary message kind {envelope.kind}")


def challenge_round(challenge_id: bytes) -> int:
    """The submitter's round number of a challenge: its id's first 7 bytes (fits SQLite)."""
    return int.from_bytes(challenge_id[:7], "big")


@dataclass(frozen=True)
class PenaltyTransaction:
    """``penalize(challenge_id, cheater, victim, amount, signature)`` with the group signature."""

    challenge_id: bytes
    cheater: str
    victim: str
    amount: int
    signature: bytes

    def encode(self) -> bytes:
        """ABI ``(bytes32, address, address, uint256, bytes)``: the submitter's row."""
        return abi_encode(
            ["bytes32", "address", "address", "uint256", "bytes"],
            [self.challenge_id, self.cheater, self.victim, self.amount, self.signature],
        )

    @classmethod
    def decode(cls, data: bytes) -> PenaltyTransaction:
        """The inverse of :meth:`encode`."""
        challenge_id, cheater, victim, amount, signature = abi_decode(
            ["bytes32", "address", "address", "uint256", "bytes"], data
        )
        return cls(
            bytes(challenge_id),
            checksum_address(cheater),
            checksum_address(victim),
            int(amount),
            bytes(signature),
        )


class NotaryPenaltyPort:
    """The committee kit's submission port for penalties on C_sp."""

    def __init__(self, notary: Notary) -> None:
        self.notary = notary
        self._ids: dict[int, bytes] = {}

    def remember(self, challenge_id: bytes) -> None:
        """Map the submitter's round number back to the full challenge id."""
        self._ids[challenge_round(challenge_id)] = challenge_id

    async def recorded(self, round: int) -> bool:
        """Whether C_sp has settled the challenge of ``round``."""
        challenge_id = self._ids.get(round)
        return challenge_id is not None and await self.notary.is_settled(challenge_id)

    async def submit(self, transaction: PenaltyTransaction) -> Receipt:
        """Send ``penalize`` (a revert raises with the contract's reason)."""
        return await self.notary.penalize(
            transaction.challenge_id,
            transaction.cheater,
            transaction.victim,
            transaction.amount,
            transaction.signature,
        )

    def already_recorded(self, error: TransactionReverted) -> bool:
        """Whether the revert says another member settled it first."""
        return "already settled" in str(error)
