"""What the protocol state machine asks its adapter to do, and how a window ends.

The node (:class:`pervasive.offchain.protocol.IntermediateNode`) returns a list of
actions for every input:

- :class:`Send`: deliver a signed :class:`ProtocolMessage` to some nodes;
- :class:`Agreed`: unanimous agreement on window ``t`` (every node emits one);
- :class:`SubmitUpdate`: send the on-chain update of window ``t`` (exactly one node, once,
  and only for a non-null result: the paper writes nothing for null);
- :class:`Dispute`: unanimous agreement failed; ``kind`` says why, ``evidence`` carries the
  signed objects that show it.

``UpdateCall.calldata()`` is the ABI encoding of the update transaction's arguments; its
length is what the benchmark compares between the standard and the fast protocol.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pervasive.crypto import Signature, abi_encode, keccak256
from pervasive.offchain.messages import CompactUpdate, ProtocolMessage, Reveal, SignedProof
from pervasive.offchain.window import WindowArray

__all__ = [
    "Action",
    "Agreed",
    "CompactUpdateCall",
    "Dispute",
    "DisputeEvidence",
    "DisputeKind",
    "FullUpdateCall",
    "Send",
    "SignedReveal",
    "SubmitUpdate",
    "UpdateCall",
]


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
class SignedReveal:
    """``c_{t,i}`` with the revealing node and its signature."""

    author: str
    reveal: Reveal
    signature: Signature


@dataclass(frozen=True)
class Send:
    """Deliver ``message`` (wire form ``message.encode()``) to each of ``recipients``."""

    recipients: tuple[str, ...]
    message: ProtocolMessage


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
        """``keccak256(c_1 || ... || c_n)``: the agreed commitments in node order.

        Each proof ``p_{t,i}`` is ``(c_i, t, a, H(w[t]))``, so this binds ``P_t``; it is
        the ``proofsHash`` of the contract's ``Update`` struct.
        """
        return keccak256(b"".join(p.proof.commitment for p in self.proofs))


@dataclass(frozen=True)
class FullUpdateCall:
    """Standard update: ``P_t`` (every proof signed by every node) and every ``c_{t,i}``."""

    t: int
    result: bytes
    window_hash: bytes
    nodes: tuple[str, ...]
    proofs: tuple[SignedProof, ...]
    reveals: tuple[SignedReveal, ...]
    window_data: bytes = b""
    """``WindowArray.encode()`` under on-chain proof of storage, else empty."""

    def calldata(self) -> bytes:
        """``abi_encode(uint256 window, bytes result, bytes32 windowHash, bytes32[] commitments,
        bytes[][] proofSignatures, bytes32[] secrets, bytes[] revealSignatures, bytes windowData)``,
        all arrays in the agreement's node order.
        """
        return abi_encode(
            [
                "uint256",
                "bytes",
                "bytes32",
                "bytes32[]",
                "bytes[][]",
                "bytes32[]",
                "bytes[]",
                "bytes",
            ],
            [
                self.t,
                self.result,
                self.window_hash,
                [p.proof.commitment for p in self.proofs],
                [[s.to_bytes() for s in p.ordered_signatures(self.nodes)] for p in self.proofs],
                [r.reveal.secret for r in self.reveals],
                [r.signature.to_bytes() for r in self.reveals],
                self.window_data,
            ],
        )


@dataclass(frozen=True)
class CompactUpdateCall:
    """Fast protocol update: ``P_t`` as one :class:`CompactUpdate` signed by every node."""

    update: CompactUpdate
    nodes: tuple[str, ...]
    signatures: tuple[Signature, ...]
    window_data: bytes = b""
    """The packed :class:`~pervasive.offchain.window_data.WindowData` of ``w[t]`` under
    on-chain proof of storage (``keccak256`` of it is ``update.data_hash``), else empty."""

    @property
    def t(self) -> int:
        """The window this update is for."""
        return self.update.window

    def calldata(self) -> bytes:
        """``abi_encode(uint256 window, bytes result, bytes32 windowHash, bytes32 proofsHash,
        bytes windowData, bytes[] signatures)``, signatures in the agreement's node order
        (the arguments of the contract's ``update_with_data``; ``update`` omits the data).
        """
        return abi_encode(
            ["uint256", "bytes", "bytes32", "bytes32", "bytes", "bytes[]"],
            [
                self.update.window,
                self.update.result,
                self.update.window_hash,
                self.update.proofs_hash,
                self.window_data,
                [s.to_bytes() for s in self.signatures],
            ],
        )


UpdateCall = FullUpdateCall | CompactUpdateCall


@dataclass(frozen=True)
class SubmitUpdate:
    """Send this update transaction to the agreement contract (emitted once per window)."""

    call: UpdateCall


@dataclass(frozen=True)
class DisputeEvidence:
    """Signed objects showing the dispute; ``accused`` is the node at fault when one is known."""

    description: str
    accused: str | None = None
    proofs: tuple[SignedProof, ...] = ()
    reveals: tuple[SignedReveal, ...] = ()
    notice: ProtocolMessage | None = None
    """The signed dispute notice, when the dispute was learned from another node."""
    window: WindowArray | None = None
    """This node's own window data, kept for dispute resolution."""


@dataclass(frozen=True)
class Dispute:
    """Window ``t`` ends without agreement: notify the contract and the users."""

    t: int
    kind: DisputeKind
    evidence: DisputeEvidence


Action = Send | Agreed | SubmitUpdate | Dispute
