"""The signed objects of the intermediate-node protocol (paper 002, section 3).

Every digest a node signs is EIP-712 in the agreement's domain
``EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)``
= ``("DIVERSITY", "1", chainId, a)``, so a Vyper contract recomputes it with
``keccak256``, ``abi_encode`` and ``ecrecover`` (see ``docs/offchain-protocol.md``):

- commitment ``H(f(w_i[t]) || S_{t,i} || ID_i)`` =
  ``keccak256(abi_encode(bool present, bytes result, bytes32 secret, address node))``
  (``present`` is false for the null result, so null and ``b""`` differ);
- proof of computation ``p_{t,i} = H(...) || t || a || H(w_i[t])``:
  ``ProofOfComputation(bytes32 commitment,uint256 window,address agreement,bytes32 windowHash)``;
- reveal ``c_{t,i} = [f(w_i[t]) || S_{t,i}] : i``:
  ``Reveal(address agreement,uint256 window,bool present,bytes result,bytes32 secret)``.

The update every node signs once they agree is :class:`pervasive.domain.Update`; the
envelope every message travels in is :class:`pervasive.committee.Envelope`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pervasive.crypto import (
    Signature,
    TypedDataHash,
    abi_encode,
    keccak256,
    recover_hash,
    struct_hash,
    typed_data_digest,
)
from pervasive.errors import InvalidInput, InvalidSignature

__all__ = [
    "PROOF_TYPE",
    "REVEAL_TYPE",
    "ProofOfComputation",
    "Reveal",
    "SignedProof",
    "SignedReveal",
    "commitment",
]

PROOF_TYPE = (
    "ProofOfComputation(bytes32 commitment,uint256 window,address agreement,bytes32 windowHash)"
)
REVEAL_TYPE = "Reveal(address agreement,uint256 window,bool present,bytes result,bytes32 secret)"


def commitment(result: bytes | None, secret: bytes, node: str) -> bytes:
    """``H(f(w_i[t]) || S_{t,i} || ID_i)``; ``None`` is the null result.

    Example: ``commitment(b"42", secrets.token_bytes(32), node.address)``.
    """
    if len(secret) != 32:
        raise InvalidInput("the secret S_{t,i} is 32 bytes")
    return keccak256(
        abi_encode(
            ["bool", "bytes", "bytes32", "address"],
            [result is not None, result or b"", secret, node],
        )
    )


@dataclass(frozen=True)
class ProofOfComputation:
    """``p_{t,i} = H(f(w_i[t]) || S_{t,i} || ID_i) || t || a || H(w_i[t])``."""

    commitment: bytes
    window: int
    agreement: str
    window_hash: bytes

    def typed_hash(self, domain: bytes) -> TypedDataHash:
        """The EIP-712 digest every node signs. Example: ``p.typed_hash(spec.domain_separator)``."""
        values = [self.commitment, self.window, self.agreement, self.window_hash]
        return typed_data_digest(domain, struct_hash(PROOF_TYPE, values))


@dataclass(frozen=True)
class Reveal:
    """``c_{t,i} = [f(w_i[t]) || S_{t,i}] : i``, bound to its agreement and window."""

    agreement: str
    window: int
    result: bytes | None
    secret: bytes

    def typed_hash(self, domain: bytes) -> TypedDataHash:
        """The EIP-712 digest the revealing node signs."""
        values = [
            self.agreement,
            self.window,
            self.result is not None,
            self.result or b"",
            self.secret,
        ]
        return typed_data_digest(domain, struct_hash(REVEAL_TYPE, values))

    def matches(self, proof: ProofOfComputation, author: str) -> bool:
        """True when this reveal opens ``proof``'s commitment for ``author``."""
        return (
            self.window == proof.window
            and commitment(self.result, self.secret, author) == proof.commitment
        )


@dataclass(frozen=True)
class SignedReveal:
    """``c_{t,i}`` with the revealing node and its signature."""

    author: str
    reveal: Reveal
    signature: Signature


@dataclass(frozen=True)
class SignedProof:
    """A proof of computation, its author, and the signatures gathered so far."""

    author: str
    proof: ProofOfComputation
    signatures: Mapping[str, Signature] = field(default_factory=dict)

    def with_signature(self, signer: str, signature: Signature) -> SignedProof:
        """A copy with one more signature."""
        return SignedProof(self.author, self.proof, {**self.signatures, signer: signature})

    def verify(
        self,
        domain: bytes,
        nodes: tuple[str, ...],
        checked: Mapping[str, Signature] | None = None,
    ) -> None:
        """Check the author signed and every signature is by the node it names.

        ``checked`` holds signatures on this same proof verified before: one that is
        byte-for-byte among them is not recovered again (a proof comes back several
        times as it collects signatures). Raises :class:`InvalidSignature` otherwise.
        """
        if self.author not in nodes or self.author not in self.signatures:
            raise InvalidSignature(f"proof by {self.author} lacks its author's signature")
        known = checked or {}
        digest = self.proof.typed_hash(domain).digest
        for signer, signature in self.signatures.items():
            if known.get(signer) == signature and signer in nodes:
                continue
            if signer not in nodes:
                raise InvalidSignature(
                    f"proof signed by {signer}, who is not a node of the agreement"
                )
            if recover_hash(digest, signature) != signer:
                raise InvalidSignature(
                    f"a signature on the proof by {self.author} is not by {signer}"
                )

    def complete(self, nodes: tuple[str, ...]) -> bool:
        """True when every node of the agreement has signed."""
        return all(n in self.signatures for n in nodes)

    def ordered_signatures(self, nodes: tuple[str, ...]) -> tuple[Signature, ...]:
        """Signatures in the agreement's node order (for on-chain evidence)."""
        return tuple(self.signatures[n] for n in nodes)
