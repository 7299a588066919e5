"""Challenge and punishment, decided (paper 003, section V-C), sans I/O.

After a cross-chain exchange either party may challenge the other with
``(comTx_b, comTx_{1-b}, rawTx_{1-b})``. Two kinds cover both directions:

- :attr:`ChallengeKind.UNDELIVERED`: the consumer C paid on B_u (the evidence is the
  pay transaction's hash, whose inclusion the committee proves) and the provider P
  did not post the data index on B_d within ``T`` of the payment's block;
- :attr:`ChallengeKind.UNPAID`: P posted the index (found on B_d) and presents C's
  signed raw pay transaction, which is not in B_u's canonical chain ``T`` after the
  posting: the payment was double-spent or dropped.

Each member gathers the same :class:`ChallengeFacts` from its own nodes (the I/O is
:mod:`pervasive.crosschain.challenge_desk`) and :func:`decide` turns them into a
:class:`Verdict`: refuse, wait until the deadline, or penalise. A penalty is one
deterministic message, so honest members sign the same bytes and their partial
signatures combine (eq. 6) into the one signature C_sp verifies (eq. 7).

Deadlines run on the members' wall clocks (a chain whose blocks are mined only on
demand never advances its own time), with the chains' block times deciding whether a
posting was on time. Choices the paper leaves open are in ``docs/crosschain.md``.

Example::

    verdict = decide(challenge, facts, publish_window=60, now=time.time())
    if verdict.outcome is Outcome.PENALIZE:
        request = penalty_request(verdict, chain_id=31337, notary=notary.address)
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pervasive.contracts.notary import penalty_message
from pervasive.crosschain.chains import PostedIndex
from pervasive.crosschain.errors import ChallengeRefused
from pervasive.crosschain.payments import Payment
from pervasive.crosschain.signing import SigningRequest
from pervasive.crypto import abi_encode, checksum_address, keccak256
from pervasive.errors import InvalidInput

__all__ = [
    "CLOCK_GRACE",
    "Challenge",
    "ChallengeFacts",
    "ChallengeKind",
    "Outcome",
    "Verdict",
    "challenge_id",
    "decide",
    "penalty_request",
]

CLOCK_GRACE = 2.0
"""Seconds added to every deadline: the members' clocks and the chains' block times
differ by this much at most before a member waits rather than penalises."""

_HEX = re.compile(r"0x[0-9a-fA-F]*")
_MAX_RAW_TRANSACTION = 16_384


class ChallengeKind(enum.StrEnum):
    """Who is accused of what."""

    UNDELIVERED = "undelivered"
    """P did not post the data index for a payment within ``T``."""
    UNPAID = "unpaid"
    """C's pay transaction is not in B_u's canonical chain ``T`` after P posted."""


def challenge_id(kind: ChallengeKind, payment_id: bytes) -> bytes:
    """``keccak256(abi_encode(keccak256(kind), payment_id))``: one challenge per kind and payment.

    C_sp accepts a penalty for an id once, so a challenge replayed (by anyone, at any
    member) cannot punish twice.
    """
    return keccak256(
        abi_encode(["bytes32", "bytes32"], [keccak256(kind.value.encode()), payment_id])
    )


@dataclass(frozen=True)
class Challenge:
    """A challenge as submitted: what kind, about which payment, with what evidence."""

    kind: ChallengeKind
    payment_id: bytes
    evidence: bytes
    """UNDELIVERED: the 32-byte hash of C's pay transaction on B_u (``comTx_b``).
    UNPAID: C's signed raw pay transaction (``rawTx_{1-b}``)."""

    @property
    def id(self) -> bytes:
        """The challenge id C_sp records (see :func:`challenge_id`)."""
        return challenge_id(self.kind, self.payment_id)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Challenge:
        """Parse ``{"kind", "payment_id", "evidence"}`` (hex strings) from an HTTP request.

        Raises :class:`InvalidInput` saying which field is wrong and how to fix it.
        """
        if not isinstance(body, Mapping):
            raise InvalidInput('a challenge is a JSON object {"kind", "payment_id", "evidence"}')
        try:
            kind = ChallengeKind(str(body.get("kind")))
        except ValueError:
            kinds = ", ".join(k.value for k in ChallengeKind)
            raise InvalidInput(f"challenge kind must be one of {kinds}") from None
        return cls.checked(kind, _hex_field(body, "payment_id"), _hex_field(body, "evidence"))

    @classmethod
    def checked(cls, kind: ChallengeKind, payment_id: bytes, evidence: bytes) -> Challenge:
        """A challenge whose fields have the sizes its kind needs; :class:`InvalidInput` else.

        Example: ``Challenge.checked(ChallengeKind.UNDELIVERED, payment_id, tx_hash)``.
        """
        if len(payment_id) != 32:
            raise InvalidInput("payment_id must be 32 bytes (the Paid event's payment_id)")
        if kind is ChallengeKind.UNDELIVERED and len(evidence) != 32:
            raise InvalidInput("an undelivered challenge's evidence is the pay transaction hash")
        if kind is ChallengeKind.UNPAID and not 0 < len(evidence) <= _MAX_RAW_TRANSACTION:
            raise InvalidInput("an unpaid challenge's evidence is C's signed raw pay transaction")
        return cls(kind, payment_id, evidence)

    def to_json(self) -> dict[str, str]:
        """The request body :meth:`from_json` reads."""
        return {
            "kind": self.kind.value,
            "payment_id": "0x" + self.payment_id.hex(),
            "evidence": "0x" + self.evidence.hex(),
        }


def _hex_field(body: Mapping[str, Any], name: str) -> bytes:
    value = body.get(name)
    if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) % 2:
        raise InvalidInput(f"{name} must be a 0x-prefixed hex string")
    return bytes.fromhex(value[2:])


@dataclass(frozen=True)
class ChallengeFacts:
    """What one member found on its own nodes about a challenge."""

    payment: Payment | None
    """The payment the evidence names; None if the evidence names no valid payment."""
    payment_included: bool
    """C's pay transaction is in B_u's canonical chain, succeeded, and its proof verified."""
    payment_time: int | None
    """Block time of the pay transaction on B_u (when included)."""
    posted: PostedIndex | None
    """P's index for the payment in B_d's canonical chain, if any."""


class Outcome(enum.StrEnum):
    """What the committee does with a challenge."""

    REFUSE = "refuse"
    WAIT = "wait"
    PENALIZE = "penalize"


@dataclass(frozen=True)
class Verdict:
    """The decision on one challenge at one moment."""

    challenge: Challenge
    outcome: Outcome
    reason: str
    cheater: str = ""
    victim: str = ""
    amount: int = 0
    ready_at: float = 0.0
    """For WAIT: the wall-clock time after which the challenge can be decided."""


def decide(
    challenge: Challenge, facts: ChallengeFacts, *, publish_window: int, now: float
) -> Verdict:
    """Refuse, wait, or penalise (paper 003, section V-C) from the facts a member found."""
    payment = facts.payment
    if payment is None:
        return _refuse(challenge, "the evidence names no payment through the user contract")
    if payment.payment_id != challenge.payment_id:
        return _refuse(challenge, "the evidence is about another payment than payment_id")
    posted = facts.posted
    if (
        posted is not None
        and posted.provider
        and (checksum_address(posted.provider) != checksum_address(payment.provider))
    ):
        posted = None  # someone other than P posted: it does not discharge P
    if challenge.kind is ChallengeKind.UNDELIVERED:
        return _undelivered(
            challenge, payment=payment, facts=facts, posted=posted, window=publish_window, now=now
        )
    return _unpaid(
        challenge, payment=payment, facts=facts, posted=posted, window=publish_window, now=now
    )


def _undelivered(
    challenge: Challenge,
    *,
    payment: Payment,
    facts: ChallengeFacts,
    posted: PostedIndex | None,
    window: int,
    now: float,
) -> Verdict:
    if not facts.payment_included or facts.payment_time is None:
        return _refuse(
            challenge, "the payment is not in B_u's canonical chain: challenge once it is"
        )
    deadline = facts.payment_time + window
    if posted is not None and posted.block_time <= deadline:
        return _refuse(
            challenge,
            f"the provider posted the index in time (block {posted.block_number}, "
            f"tx {posted.tx_id})",
        )
    if now < deadline + CLOCK_GRACE:
        return Verdict(
            challenge, Outcome.WAIT, "the provider's deadline has not passed", ready_at=deadline
        )
    late = f"posted the index late (block {posted.block_number})" if posted else "never posted"
    return Verdict(
        challenge,
        Outcome.PENALIZE,
        f"the provider {late}: it had {window} s after the payment's block",
        cheater=payment.provider,
        victim=payment.consumer,
        amount=payment.required,
    )


def _unpaid(
    challenge: Challenge,
    *,
    payment: Payment,
    facts: ChallengeFacts,
    posted: PostedIndex | None,
    window: int,
    now: float,
) -> Verdict:
    if posted is None:
        return _refuse(
            challenge,
            "the provider has not posted the index for this payment on B_d: post it first",
        )
    if facts.payment_included:
        return _refuse(
            challenge, f"the payment {payment.tx_hash} is in B_u's canonical chain: it was paid"
        )
    deadline = posted.block_time + window
    if now < deadline + CLOCK_GRACE:
        return Verdict(
            challenge, Outcome.WAIT, "the consumer's deadline has not passed", ready_at=deadline
        )
    return Verdict(
        challenge,
        Outcome.PENALIZE,
        f"the pay transaction {payment.tx_hash} is not in B_u {window} s after the index",
        cheater=payment.consumer,
        victim=payment.provider,
        amount=payment.required,
    )


def _refuse(challenge: Challenge, reason: str) -> Verdict:
    return Verdict(challenge, Outcome.REFUSE, reason)


def penalty_request(verdict: Verdict, *, chain_id: int, notary: str) -> SigningRequest:
    """The message the committee threshold-signs to execute ``verdict`` on C_sp."""
    if verdict.outcome is not Outcome.PENALIZE:
        raise ChallengeRefused(f"nothing to sign: the challenge is {verdict.outcome.value}")
    message = penalty_message(
        chain_id, notary, verdict.challenge.id, verdict.cheater, verdict.victim, verdict.amount
    )
    return SigningRequest(request_id=verdict.challenge.id, message=message)
