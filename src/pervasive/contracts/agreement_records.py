"""What is written to an agreement and read back: signed updates, records, dispute evidence.

Paper 002, section 3: window ``t`` is recorded on-chain with ``f(w[t])``, ``H(w[t])``
and a commitment to the proofs ``P_t`` only when every intermediate node signed the
same :class:`UpdatePayload` (EIP-712 :data:`UPDATE_TYPE` in the agreement's domain);
otherwise a node opens a dispute with the signed proofs and reveals as evidence.
Pure values over :mod:`pervasive.crypto`; ``agreement.py`` sends and reads them.

Example::

    payload = UpdatePayload.for_window(agreement.address, t, result, window_hash)
    signatures = [payload.sign(key, ledger.chain_id) for key in node_keys]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pervasive.contracts.agreement_terms import agreement_domain
from pervasive.crypto import (
    PrivateKey,
    Signature,
    TypedDataHash,
    checksum_address,
    keccak256,
    sign_typed_data,
    struct_hash,
    typed_data_digest,
)

__all__ = [
    "UPDATE_TYPE",
    "DisputeRecord",
    "ProofEvidence",
    "Record",
    "RevealEvidence",
    "UpdatePayload",
    "compact_signature",
    "expand_signature",
]

UPDATE_TYPE = (
    "Update(address agreement,uint256 window,bytes result,bytes32 windowHash,"
    "bytes32 proofsHash,bytes32 dataHash)"
)
"""The EIP-712 type every node signs for an on-chain update of window ``t``."""
_ZERO = bytes(32)


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
class UpdatePayload:
    """The struct every node signs for window ``t`` (EIP-712 :data:`UPDATE_TYPE`).

    ``proofs_hash`` binds the off-chain proofs of computation ``P_t`` and ``data_hash``
    is ``keccak256`` of the packed window data (zero unless the QoS is on-chain).
    Its struct hash is also the record's commitment stored on-chain.
    """

    agreement: str
    window: int
    result: bytes
    window_hash: bytes
    proofs_hash: bytes = _ZERO
    data_hash: bytes = _ZERO

    @classmethod
    def for_window(
        cls,
        agreement: str,
        t: int,
        result: bytes | None,
        window_hash: bytes,
        *,
        proofs_hash: bytes = _ZERO,
        data: bytes | None = None,
    ) -> UpdatePayload:
        """The payload of window ``t`` (``None`` = the null result) over window ``data``.

        ``data_hash`` is ``keccak256(data)`` when packed window data goes on-chain
        (``data`` given), zero otherwise.

        Example: ``UpdatePayload.for_window(agreement.address, 0, result, window_hash)``.
        """
        data_hash = keccak256(data) if data is not None else _ZERO
        return cls(agreement, t, result or b"", window_hash, proofs_hash, data_hash)

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct`` of the update (the on-chain record commitment)."""
        values = [
            checksum_address(self.agreement), self.window, self.result, self.window_hash,
            self.proofs_hash, self.data_hash,
        ]  # fmt: skip
        return struct_hash(UPDATE_TYPE, values)

    def typed_hash(self, chain_id: int) -> TypedDataHash:
        """The digest every node signs."""
        return typed_data_digest(agreement_domain(chain_id, self.agreement), self.struct_hash())

    def sign(self, key: PrivateKey, chain_id: int) -> Signature:
        """A node's signature. Example: ``payload.sign(node_key, ledger.chain_id)``."""
        return sign_typed_data(key, self.typed_hash(chain_id))


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
