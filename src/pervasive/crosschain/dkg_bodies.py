"""The messages of the notary committee's key generation and its transcript (paper 003, V-A).

Every DKG message is a :class:`~pervasive.committee.Envelope` in the notary domain
(:func:`notary_domain`) of the session (:func:`notary_session`), ``round`` 0, and one of
the kinds of :class:`DkgKind`. Each member sends at most one message of each kind; its
body is decoded **once**, at receipt, by :func:`decode_dkg_body`. ABI layouts:

================== ===========================================================================
kind               body
================== ===========================================================================
DKG_DEAL (1)       :class:`DealBody` ``(bytes[] commitments, bytes proof, bytes[] shares)``:
                   ``A_{i,0..t-1}`` in G2 (eq. 2), the proof of possession of ``a_{i,0}``,
                   and ``f_i(j)`` for each member ``j`` (1..n, own slot included) encrypted
                   to ``j``'s secp256k1 key under :func:`share_context`
DKG_COMPLAINT (2)  :class:`ComplaintBody` ``(uint256[] accused, bytes[] evidence, bytes32[]
                   seen)``: the sender's complaints, possibly none (an empty list says "I
                   have none", so the others need not wait for the deadline); evidence is
                   the accused's signed deal envelope, or empty when the deal never
                   arrived; ``seen[i-1]`` is :func:`commitments_digest` of the deal it got
                   from dealer ``i`` (zero if none), so that a dealer who showed different
                   commitments to different members is seen by all
DKG_JUSTIFICATION  :class:`JustificationBody` ``(bytes deal, uint256[] complainers,
(3)                uint256[] shares)``: the dealer's signed deal again and the disputed
                   shares in clear, checked by everyone against the commitments (eq. 3)
DKG_RESULT (4)     :class:`ResultBody` ``(uint256[] qualified, bytes group_key)``
================== ===========================================================================

The :class:`DkgTranscript` is what the committee publishes (its CID goes to the notary
contract): every deal's commitments and proof, the complaints, the justifications, and
the signed result envelopes, as canonical JSON (sorted keys, no spaces, hex strings).
It also holds the data a member's state machine (:mod:`pervasive.crosschain.dkg`) hands
out: its phases, deadlines, result and the actions it returns.

Example::

    session = notary_session(31337, member_addresses, setup_nonce)
    body = decode_dkg_body(envelope)  # DealBody | ComplaintBody | JustificationBody | ResultBody
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pervasive.committee import Envelope, Send
from pervasive.crypto import abi_decode, abi_encode, checksum_address, domain_separator, keccak256
from pervasive.crypto.bls import BLS_CURVE_ORDER
from pervasive.errors import InvalidInput

__all__ = [
    "DKG_ROUND",
    "ComplaintBody",
    "DealBody",
    "DealRecord",
    "DkgAborted",
    "DkgAction",
    "DkgBody",
    "DkgFinished",
    "DkgKind",
    "DkgPhase",
    "DkgResult",
    "DkgSchedule",
    "DkgTranscript",
    "JustificationBody",
    "ResultBody",
    "commitments_digest",
    "decode_dkg_body",
    "notary_domain",
    "notary_session",
    "share_context",
]

DKG_ROUND = 0
"""The envelope ``round`` of every DKG message (a session runs one key generation)."""

_G2_SIZE = 96
_G1_SIZE = 48


class DkgKind(enum.IntEnum):
    """The envelope kinds of the key generation (the design page's numbering)."""

    DKG_DEAL = 1
    DKG_COMPLAINT = 2
    DKG_JUSTIFICATION = 3
    DKG_RESULT = 4


def notary_session(chain_id: int, members: list[str] | tuple[str, ...], setup_nonce: bytes) -> str:
    """``keccak256(abi_encode(uint256 chain_id, address[] sorted members, bytes32 nonce))[12:]``.

    Example: ``notary_session(31337, [a, b, c, d], bytes(32))  # '0x...'``.
    """
    if len(setup_nonce) != 32:
        raise InvalidInput(f"the setup nonce is 32 bytes, got {len(setup_nonce)}: draw it once")
    ordered = sorted((checksum_address(m) for m in members), key=lambda a: int(a, 16))
    if len(set(ordered)) != len(ordered):
        raise InvalidInput("the committee lists a member twice: give each address once")
    encoded = abi_encode(["uint256", "address[]", "bytes32"], [chain_id, ordered, setup_nonce])
    return checksum_address(keccak256(encoded)[12:])


def notary_domain(chain_id: int, session: str) -> bytes:
    """The EIP-712 domain ``("pervasive notary", "1", chainId, verifyingContract=session)``.

    Example: ``notary_domain(31337, notary_session(31337, members, nonce))``.
    """
    return domain_separator("pervasive notary", "1", chain_id, session)


def share_context(session: str, dealer: str, recipient: str) -> bytes:
    """The ECIES context of the share ``dealer`` sends ``recipient``: ``session‖dealer‖recipient``.

    Binding both addresses means a ciphertext cannot be replayed as another dealer's
    share or moved to another recipient's slot.

    Example: ``encrypt_to(pk_j, share, context=share_context(session, me, member_j))``.
    """
    return b"".join(bytes.fromhex(a[2:]) for a in (session, dealer, recipient))


def commitments_digest(commitments: tuple[bytes, ...]) -> bytes:
    """``keccak256`` of a deal's commitments ``A_{i,0} ‖ ... ‖ A_{i,t-1}``, never zero.

    Example: ``commitments_digest(Polynomial.from_seed(seed, 3).commitments())``.
    """
    return keccak256(b"".join(commitments))


@dataclass(frozen=True)
class DealBody:
    """A dealer's commitments ``A_{i,k}`` (eq. 2), proof of possession and encrypted shares."""

    commitments: tuple[bytes, ...]
    proof: bytes
    shares: tuple[bytes, ...]
    """Ciphertext of ``f_i(j)`` (32 bytes big-endian) for member ``j`` at ``shares[j - 1]``."""

    def encode(self) -> bytes:
        """``abi_encode(bytes[], bytes, bytes[])``."""
        return abi_encode(
            ["bytes[]", "bytes", "bytes[]"], [list(self.commitments), self.proof, list(self.shares)]
        )


@dataclass(frozen=True)
class ComplaintBody:
    """All of a member's complaints (``accused[k]`` with ``evidence[k]``, maybe empty),
    and the digest of the commitments it received from each dealer (its echo)."""

    accused: tuple[int, ...]
    evidence: tuple[bytes, ...]
    seen: tuple[bytes, ...]

    def encode(self) -> bytes:
        """``abi_encode(uint256[], bytes[], bytes32[])``."""
        return abi_encode(
            ["uint256[]", "bytes[]", "bytes32[]"],
            [list(self.accused), list(self.evidence), list(self.seen)],
        )


@dataclass(frozen=True)
class JustificationBody:
    """A dealer's answer: its signed deal and, for each complainer, the share in clear."""

    deal: bytes
    complainers: tuple[int, ...]
    shares: tuple[int, ...]

    def encode(self) -> bytes:
        """``abi_encode(bytes, uint256[], uint256[])``."""
        return abi_encode(
            ["bytes", "uint256[]", "uint256[]"],
            [self.deal, list(self.complainers), list(self.shares)],
        )


@dataclass(frozen=True)
class ResultBody:
    """What a member concluded: the qualified dealers and the group key (eq. 5)."""

    qualified: tuple[int, ...]
    group_key: bytes

    def encode(self) -> bytes:
        """``abi_encode(uint256[], bytes)``."""
        return abi_encode(["uint256[]", "bytes"], [list(self.qualified), self.group_key])


DkgBody = DealBody | ComplaintBody | JustificationBody | ResultBody
"""Any decoded DKG body."""

_LAYOUTS = {
    DkgKind.DKG_DEAL: ["bytes[]", "bytes", "bytes[]"],
    DkgKind.DKG_COMPLAINT: ["uint256[]", "bytes[]", "bytes32[]"],
    DkgKind.DKG_JUSTIFICATION: ["bytes", "uint256[]", "uint256[]"],
    DkgKind.DKG_RESULT: ["uint256[]", "bytes"],
}


def decode_dkg_body(envelope: Envelope) -> DkgBody:
    """The typed body of a DKG envelope; :class:`InvalidInput` if its kind or shape is wrong.

    Checks only the shape (sizes, lengths that must match, shares below ``r``); the
    cryptographic checks need the committee and are the member's.

    Example: ``EnvelopeReceiver(domain, session, senders=members, decode_body=decode_dkg_body)``.
    """
    try:
        kind = DkgKind(envelope.kind)
    except ValueError:
        raise InvalidInput(f"message kind {envelope.kind} is not a DKG kind (1-4)") from None
    fields = abi_decode(_LAYOUTS[kind], envelope.body)
    if kind is DkgKind.DKG_DEAL:
        commitments, proof, shares = fields
        if not commitments or any(len(c) != _G2_SIZE for c in commitments):
            raise InvalidInput("a deal's commitments must be 96-byte compressed G2 points")
        if len(proof) != _G1_SIZE:
            raise InvalidInput("a deal's proof of possession must be a 48-byte G1 point")
        return DealBody(tuple(commitments), proof, tuple(shares))
    if kind is DkgKind.DKG_COMPLAINT:
        accused, evidence, seen = fields
        if len(accused) != len(evidence) or len(set(accused)) != len(accused):
            raise InvalidInput("a complaint needs one evidence per accused dealer, each once")
        return ComplaintBody(tuple(accused), tuple(evidence), tuple(seen))
    if kind is DkgKind.DKG_JUSTIFICATION:
        deal, complainers, shares = fields
        if len(complainers) != len(shares) or any(s >= BLS_CURVE_ORDER for s in shares):
            raise InvalidInput("a justification needs one share below r per complainer")
        return JustificationBody(deal, tuple(complainers), tuple(shares))
    qualified, group_key = fields
    if len(group_key) != _G2_SIZE or list(qualified) != sorted(set(qualified)):
        raise InvalidInput("a result names a 96-byte group key and a sorted qualified set")
    return ResultBody(tuple(qualified), group_key)


@dataclass(frozen=True)
class DealRecord:
    """A dealer's public part of its deal, as the transcript keeps it."""

    dealer: int
    commitments: tuple[bytes, ...]
    proof: bytes


@dataclass(frozen=True)
class DkgTranscript:
    """The public record of one key generation, serialised by :meth:`to_json` for the content store.

    ``complaints`` holds ``(complainer, accused, evidence)``, ``justifications``
    ``(dealer, complainer, share)``, ``results`` the signed DKG_RESULT envelopes (wire
    form) by member index, so anyone can check who agreed to ``group_key``.
    """

    session: str
    chain_id: int
    threshold: int
    members: tuple[str, ...]
    """Member addresses; member ``j`` is ``members[j - 1]``."""
    deals: tuple[DealRecord, ...]
    complaints: tuple[tuple[int, int, bytes], ...]
    justifications: tuple[tuple[int, int, int], ...]
    qualified: tuple[int, ...]
    group_key: bytes
    results: tuple[tuple[int, bytes], ...]

    def to_json(self) -> bytes:
        """Canonical JSON: sorted keys, no whitespace, bytes as ``0x`` hex, shares as decimal.

        Example: ``ContentStore(root).put(transcript.to_json())`` gives its CID.
        """
        document: dict[str, Any] = {
            "session": self.session,
            "chain_id": self.chain_id,
            "threshold": self.threshold,
            "members": list(self.members),
            "deals": [
                {
                    "dealer": d.dealer,
                    "commitments": ["0x" + c.hex() for c in d.commitments],
                    "proof": "0x" + d.proof.hex(),
                }
                for d in self.deals
            ],
            "complaints": [
                {"complainer": c, "accused": a, "evidence": "0x" + e.hex()}
                for c, a, e in self.complaints
            ],
            "justifications": [
                {"dealer": d, "complainer": c, "share": str(s)} for d, c, s in self.justifications
            ],
            "qualified": list(self.qualified),
            "group_key": "0x" + self.group_key.hex(),
            "results": [{"member": m, "envelope": "0x" + e.hex()} for m, e in self.results],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> DkgTranscript:
        """Parse :meth:`to_json`'s output; :class:`InvalidInput` if it is not a transcript.

        Example: ``DkgTranscript.from_json(store.get(cid)).group_key``.
        """
        try:
            d = json.loads(data)
            return cls(
                session=checksum_address(d["session"]),
                chain_id=int(d["chain_id"]),
                threshold=int(d["threshold"]),
                members=tuple(checksum_address(m) for m in d["members"]),
                deals=tuple(
                    DealRecord(
                        int(r["dealer"]),
                        tuple(_hex(c) for c in r["commitments"]),
                        _hex(r["proof"]),
                    )
                    for r in d["deals"]
                ),
                complaints=tuple(
                    (int(c["complainer"]), int(c["accused"]), _hex(c["evidence"]))
                    for c in d["complaints"]
                ),
                justifications=tuple(
                    (int(j["dealer"]), int(j["complainer"]), int(j["share"]))
                    for j in d["justifications"]
                ),
                qualified=tuple(int(q) for q in d["qualified"]),
                group_key=_hex(d["group_key"]),
                results=tuple((int(r["member"]), _hex(r["envelope"])) for r in d["results"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(
                f"not a DKG transcript ({exc}): give the bytes of to_json()"
            ) from exc


class DkgPhase(enum.IntEnum):
    """Where a member is in the key generation (ordered: a member only moves forward)."""

    DEALING = 1
    COMPLAINING = 2
    JUSTIFYING = 3
    AGREEING = 4
    DONE = 5
    FAILED = 6


@dataclass(frozen=True)
class DkgSchedule:
    """Absolute deadlines (unix seconds) every member of the session was given at setup."""

    deal_by: float
    complain_by: float
    justify_by: float
    result_by: float

    def __post_init__(self) -> None:
        if not self.deal_by < self.complain_by < self.justify_by < self.result_by:
            raise InvalidInput("DKG deadlines must increase: deal < complain < justify < result")

    @classmethod
    def starting(cls, now: float, step: float) -> DkgSchedule:
        """Deadlines ``step`` seconds apart from ``now``.

        Example: ``DkgSchedule.starting(time.time(), 10)``.
        """
        return cls(now + step, now + 2 * step, now + 3 * step, now + 4 * step)


@dataclass(frozen=True)
class DkgResult:
    """A member's outcome: its share ``sk_j`` (eq. 4), the group key (eq. 5), public shares."""

    group_key: bytes
    threshold: int
    index: int
    share: int = field(repr=False)
    public_shares: Mapping[int, bytes]
    """``g2 * sk_j`` of every member ``j``: checks member ``j``'s partial signatures."""
    qualified: tuple[int, ...]


@dataclass(frozen=True)
class DkgFinished:
    """The key generation ended with ``result``; publish ``transcript.to_json()``."""

    result: DkgResult
    transcript: DkgTranscript


@dataclass(frozen=True)
class DkgAborted:
    """The key generation cannot finish (a new session with a new setup nonce is needed)."""

    reason: str


DkgAction = Send | DkgFinished | DkgAborted
"""What :class:`DkgMember` asks its adapter to do, or tells it."""


def _hex(text: str) -> bytes:
    if not text.startswith("0x"):
        raise ValueError(f"{text[:16]!r} is not 0x-prefixed hex")
    return bytes.fromhex(text[2:])
