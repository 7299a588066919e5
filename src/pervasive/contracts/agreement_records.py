"""What is read back from an agreement: records, dispute evidence, EIP-2098 signatures.

Paper 002, section 3: window ``t`` is recorded on-chain with ``f(w[t])``, ``H(w[t])``
and a commitment to the proofs ``P_t`` only when every intermediate node signed the
same :class:`~pervasive.domain.Update`; otherwise a node opens a dispute with the signed
proofs and reveals as evidence. Pure values; ``agreement.py`` sends and reads them.

Example::

    r, vs = compact_signature(update.sign(key, ledger.chain_id))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pervasive.crypto import Signature

__all__ = [
    "DisputeRecord",
    "ProofEvidence",
    "Record",
    "RevealEvidence",
    "compact_signature",
    "expand_signature",
]


def compact_signature(signature: Signature) -> tuple[bytes, bytes]:
    """EIP-2098 ``(r, vs)``: the top bit of ``vs`` is ``v - 27``.

    Example: ``r, vs = compact_signature(sig)``.
    """
    vs = ((signature.v - 27) << 255) | signature.s
    return signature.r.to_bytes(32, "big"), vs.to_bytes(32, "big")


def expand_signature(raw: Sequence[bytes]) -> Signature:
    """Inverse of :func:`compact_signature` (what a dispute event holds).

    Example: ``expand_signature(compact_signature(sig)) == sig``.
    """
    r, vs = bytes(raw[0]), int.from_bytes(bytes(raw[1]), "big")
    return Signature(int.from_bytes(r, "big"), vs & ((1 << 255) - 1), 27 + (vs >> 255))


@dataclass(frozen=True)
class Record:
    """The on-chain record of window ``t``: ``(f(w[t]), P_t, w[t])`` as commitments."""

    window: int
    result: bytes
    window_hash: bytes
    proofs_hash: bytes
    data_hash: bytes
    commitment: bytes
    block_number: int
    transaction_hash: str


@dataclass(frozen=True)
class ProofEvidence:
    """A signed proof of computation ``p_{t,author}`` as dispute evidence."""

    author: int
    commitment: bytes
    window_hash: bytes
    signature: Signature

    def as_abi(self) -> tuple[Any, ...]:
        """The ``ProofEvidence`` tuple the contract takes."""
        return (self.author, self.commitment, self.window_hash, compact_signature(self.signature))


@dataclass(frozen=True)
class RevealEvidence:
    """A signed reveal ``c_{t,author}`` as dispute evidence (``result`` None = null)."""

    author: int
    result: bytes | None
    secret: bytes
    signature: Signature

    def as_abi(self) -> tuple[Any, ...]:
        """The ``RevealEvidence`` tuple the contract takes."""
        present = self.result is not None
        sig = compact_signature(self.signature)
        return (self.author, present, self.result or b"", self.secret, sig)


@dataclass(frozen=True)
class DisputeRecord:
    """A dispute as recorded on-chain, with its evidence read back from the event."""

    index: int
    window: int
    kind: int
    opener: str
    proofs: tuple[ProofEvidence, ...]
    reveals: tuple[RevealEvidence, ...]
    data_hash: bytes
    block_number: int
    transaction_hash: str
