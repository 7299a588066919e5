"""How a window ends at a node, and what the protocol asks its adapter to do.

The node protocol (:class:`pervasive.offchain.node_protocol.NodeProtocol`) returns a
list of :data:`Action` for every input:

- :class:`~pervasive.committee.Send`: deliver a signed envelope to some nodes;
- :class:`Agreed`: unanimous agreement on window ``t`` (every node emits one);
- :class:`~pervasive.committee.Submit` of a :class:`~pervasive.domain.SignedUpdate`:
  the window's update, signed by every node, to send on-chain exactly once across
  the committee (only for a non-null result: the paper writes nothing for null);
- :class:`Dispute`: unanimous agreement failed; ``kind`` says why, ``evidence`` carries
  the signed objects that show it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pervasive.committee import Envelope, Send, Submit
from pervasive.domain import SignedUpdate, proofs_hash
from pervasive.offchain.signed import SignedProof, SignedReveal
from pervasive.offchain.window import WindowArray

__all__ = ["Action", "Agreed", "Dispute", "DisputeEvidence", "DisputeKind"]


class DisputeKind(enum.IntEnum):
    """Why a window ended in dispute (the value is the on-chain ``uint8``)."""

    WINDOW_HASH_MISMATCH = 1
    """Two nodes computed on different windows: ``H(w_i[t]) != H(w_j[t])``."""
    RESULT_MISMATCH = 2
    """Two reveals open their commitments but the results differ."""
    BAD_REVEAL = 3
    """A reveal does not open its author's commitment (a lazy or lying node)."""
    TIMEOUT = 4
    """A node stopped answering and retries were exhausted."""
    COMPACT_MISMATCH = 5
    """Fast protocol: the leader's ``P_{t-1}`` is not the agreed result of ``t-1``."""
    INVALID_PROOF = 6
    """A proof arrived with a bad or missing signature from a node of the agreement."""


@dataclass(frozen=True)
class Agreed:
    """Every node revealed the same result for window ``t`` (property P1 satisfied)."""

    t: int
    result: bytes | None
    window_hash: bytes
    proofs: tuple[SignedProof, ...]
    reveals: tuple[SignedReveal, ...]

    @property
    def proofs_hash(self) -> bytes:
        """:func:`pervasive.domain.proofs_hash` of the agreed commitments, in node order."""
        return proofs_hash([p.proof.commitment for p in self.proofs])


@dataclass(frozen=True)
class DisputeEvidence:
    """Signed objects showing the dispute; ``accused`` is the node at fault when one is known."""

    description: str
    accused: str | None = None
    proofs: tuple[SignedProof, ...] = ()
    reveals: tuple[SignedReveal, ...] = ()
    notice: Envelope | None = None
    """The signed dispute notice, when the dispute was learned from another node."""
    window: WindowArray | None = None
    """This node's own window data, kept for dispute resolution."""


@dataclass(frozen=True)
class Dispute:
    """Window ``t`` ends without agreement: notify the contract and the users."""

    t: int
    kind: DisputeKind
    evidence: DisputeEvidence


Action = Send | Agreed | Submit[SignedUpdate] | Dispute
