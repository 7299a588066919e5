"""Signed objects and wire messages of the intermediate-node protocol (paper 002, section 3).

Every digest a node signs is EIP-712 in the agreement's domain
``EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)``
= ``("DIVERSITY", "1", chainId, a)``, i.e.
``keccak256(0x1901 || domainSeparator || keccak256(abi_encode(TYPEHASH, fields...)))``
with ``bytes`` fields replaced by their ``keccak256``, so a Vyper contract recomputes it
with ``keccak256``, ``abi_encode`` and ``ecrecover`` (see ``docs/offchain-protocol.md``).

- commitment ``H(f(w_i[t]) || S_{t,i} || ID_i)`` =
  ``keccak256(abi_encode(bool present, bytes result, bytes32 secret, address node))``
  (``present`` is false for the null result, so null and ``b""`` differ);
- proof of computation ``p_{t,i} = H(...) || t || a || H(w_i[t])``:
  ``ProofOfComputation(bytes32 commitment,uint256 window,address agreement,bytes32 windowHash)``;
- reveal ``c_{t,i} = [f(w_i[t]) || S_{t,i}] : i``:
  ``Reveal(address agreement,uint256 window,bool present,bytes result,bytes32 secret)``;
- compact update ``P_{t-1}`` of the fast protocol:
  ``Update(address agreement,uint256 window,bytes result,bytes32 windowHash)``;
- every wire message: ``ProtocolMessage(address agreement,uint256 window,uint8 kind,
  address sender,uint64 nonce,bytes body)`` (one line, no spaces after commas).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pervasive.crypto import (
    PrivateKey,
    Signature,
    TypedDataHash,
    abi_decode,
    abi_encode,
    checksum_address,
    keccak256,
    recover_hash,
    sign_typed_data,
    struct_hash,
    typed_data_digest,
)
from pervasive.errors import InvalidInput, InvalidSignature

__all__ = [
    "PROOF_TYPE",
    "PROTOCOL_MESSAGE_TYPE",
    "REVEAL_TYPE",
    "UPDATE_TYPE",
    "CompactUpdate",
    "MessageKind",
    "ProofOfComputation",
    "ProtocolMessage",
    "Reveal",
    "SignedProof",
    "commitment",
    "decode_dispute_body",
    "decode_proofs_body",
    "decode_protocol_message",
    "decode_reveal_body",
    "decode_signatures_body",
    "encode_dispute_body",
    "encode_proofs_body",
    "encode_reveal_body",
    "encode_signatures_body",
]

PROOF_TYPE = (
    "ProofOfComputation(bytes32 commitment,uint256 window,address agreement,bytes32 windowHash)"
)
REVEAL_TYPE = "Reveal(address agreement,uint256 window,bool present,bytes result,bytes32 secret)"
UPDATE_TYPE = "Update(address agreement,uint256 window,bytes result,bytes32 windowHash)"
PROTOCOL_MESSAGE_TYPE = (
    "ProtocolMessage(address agreement,uint256 window,uint8 kind,address sender,"
    "uint64 nonce,bytes body)"
)


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
class CompactUpdate:
    """The fast protocol's ``P_{t-1} = f(w[t-1])``: one struct signed by every node."""

    agreement: str
    window: int
    result: bytes
    window_hash: bytes

    def typed_hash(self, domain: bytes) -> TypedDataHash:
        """The EIP-712 digest every node signs for the compact on-chain update."""
        values = [self.agreement, self.window, self.result, self.window_hash]
        return typed_data_digest(domain, struct_hash(UPDATE_TYPE, values))


@dataclass(frozen=True)
class SignedProof:
    """A proof of computation, its author, and the signatures gathered so far."""

    author: str
    proof: ProofOfComputation
    signatures: Mapping[str, Signature] = field(default_factory=dict)

    def with_signature(self, signer: str, signature: Signature) -> SignedProof:
        """A copy with one more signature."""
        return SignedProof(self.author, self.proof, {**self.signatures, signer: signature})

    def verify(self, domain: bytes, nodes: tuple[str, ...]) -> None:
        """Check the author signed and every signature is by the node it names.

        Raises :class:`InvalidSignature` otherwise.
        """
        if self.author not in nodes or self.author not in self.signatures:
            raise InvalidSignature(f"proof by {self.author} lacks its author's signature")
        digest = self.proof.typed_hash(domain).digest
        for signer, signature in self.signatures.items():
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
        """Signatures in the agreement's node order (for on-chain calldata)."""
        return tuple(self.signatures[n] for n in nodes)


class MessageKind(enum.IntEnum):
    """Kinds of wire messages (the ``uint8 kind`` of :data:`PROTOCOL_MESSAGE_TYPE`)."""

    PROOF_RING = 1
    """Ring step: a proof with the signatures so far, to the next node (or back to the author)."""
    PROOF_COMPLETE = 2
    """Proof(s) signed by every node, broadcast (by the author in ring mode, else the leader)."""
    PROOF_TO_LEADER = 3
    """A node's own signed proof, sent to the leader."""
    LEADER_BUNDLE = 4
    """All proofs from the leader for signature (and, in the fast protocol, ``P_{t-1}``)."""
    SIGNATURES = 5
    """A node's signatures on the leader's bundle (and on ``P_{t-1}``)."""
    REVEAL = 6
    """``c_{t,i}``: result and secret, broadcast after holding every fully signed proof."""
    DISPUTE_NOTICE = 7
    """The sender opened a dispute on this window; body ``(uint8 kind, address accused)``."""


_PROOF_TUPLE = "(address,bytes32,bytes32,address[],bytes[])"
_PROOFS_BODY = [f"{_PROOF_TUPLE}[]", "bool", "uint256", "bytes", "bytes32", "address[]", "bytes[]"]
_SIGNATURES_BODY = ["address[]", "bytes[]", "bool", "uint256", "bytes"]
_REVEAL_BODY = ["bool", "bytes", "bytes32", "bytes"]
_DISPUTE_BODY = ["uint8", "address"]
_WIRE = ["address", "uint256", "uint8", "address", "uint64", "bytes", "bytes"]


def encode_proofs_body(
    proofs: tuple[SignedProof, ...],
    compact: CompactUpdate | None = None,
    compact_signatures: Mapping[str, Signature] | None = None,
) -> bytes:
    """Body of PROOF_* and LEADER_BUNDLE messages: proofs, then an optional compact update."""
    rows = [
        (
            p.author,
            p.proof.commitment,
            p.proof.window_hash,
            list(p.signatures),
            [s.to_bytes() for s in p.signatures.values()],
        )
        for p in proofs
    ]
    signatures = compact_signatures or {}
    return abi_encode(
        _PROOFS_BODY,
        [
            rows,
            compact is not None,
            compact.window if compact else 0,
            compact.result if compact else b"",
            compact.window_hash if compact else bytes(32),
            list(signatures),
            [s.to_bytes() for s in signatures.values()],
        ],
    )


def decode_proofs_body(
    body: bytes, agreement: str, window: int
) -> tuple[tuple[SignedProof, ...], CompactUpdate | None, dict[str, Signature]]:
    """Inverse of :func:`encode_proofs_body`; ``window``/``agreement`` come from the envelope."""
    rows, has_compact, c_window, c_result, c_hash, c_signers, c_sigs = abi_decode(
        _PROOFS_BODY, body
    )
    proofs = []
    for author, commit, window_hash, signers, sigs in rows:
        if len(signers) != len(sigs) or len(set(signers)) != len(signers):
            raise InvalidInput("proof signers and signatures do not pair up")
        signatures = {
            checksum_address(s): Signature.from_bytes(b) for s, b in zip(signers, sigs, strict=True)
        }
        proof = ProofOfComputation(commit, window, agreement, window_hash)
        proofs.append(SignedProof(checksum_address(author), proof, signatures))
    compact = CompactUpdate(agreement, c_window, c_result, c_hash) if has_compact else None
    if len(c_signers) != len(c_sigs):
        raise InvalidInput("compact update signers and signatures do not pair up")
    compact_signatures = {
        checksum_address(s): Signature.from_bytes(b) for s, b in zip(c_signers, c_sigs, strict=True)
    }
    return tuple(proofs), compact, compact_signatures


def encode_signatures_body(
    signatures: Mapping[str, Signature], compact: tuple[int, Signature] | None = None
) -> bytes:
    """Body of SIGNATURES: a signature per proof author, ``(window, sig)`` on a compact update."""
    return abi_encode(
        _SIGNATURES_BODY,
        [
            list(signatures),
            [s.to_bytes() for s in signatures.values()],
            compact is not None,
            compact[0] if compact else 0,
            compact[1].to_bytes() if compact else b"",
        ],
    )


def decode_signatures_body(
    body: bytes,
) -> tuple[dict[str, Signature], tuple[int, Signature] | None]:
    """Inverse of :func:`encode_signatures_body`."""
    authors, sigs, has_compact, compact_window, compact = abi_decode(_SIGNATURES_BODY, body)
    if len(authors) != len(sigs):
        raise InvalidInput("signature authors and signatures do not pair up")
    pairs = {
        checksum_address(a): Signature.from_bytes(s) for a, s in zip(authors, sigs, strict=True)
    }
    return pairs, (compact_window, Signature.from_bytes(compact)) if has_compact else None


def encode_reveal_body(reveal: Reveal, signature: Signature) -> bytes:
    """Body of REVEAL: ``(bool present, bytes result, bytes32 secret, bytes signature)``."""
    return abi_encode(
        _REVEAL_BODY,
        [reveal.result is not None, reveal.result or b"", reveal.secret, signature.to_bytes()],
    )


def decode_reveal_body(body: bytes, agreement: str, window: int) -> tuple[Reveal, Signature]:
    """Inverse of :func:`encode_reveal_body`."""
    present, result, secret, signature = abi_decode(_REVEAL_BODY, body)
    if not present and result:
        raise InvalidInput("a null reveal must carry an empty result")
    reveal = Reveal(agreement, window, result if present else None, secret)
    return reveal, Signature.from_bytes(signature)


def encode_dispute_body(kind: int, accused: str | None) -> bytes:
    """Body of DISPUTE_NOTICE. ``accused`` is the zero address when nobody is named."""
    return abi_encode(_DISPUTE_BODY, [kind, accused or "0x" + "00" * 20])


def decode_dispute_body(body: bytes) -> tuple[int, str | None]:
    """Inverse of :func:`encode_dispute_body`."""
    kind, accused = abi_decode(_DISPUTE_BODY, body)
    address = checksum_address(accused)
    return kind, None if int(address, 16) == 0 else address


@dataclass(frozen=True)
class ProtocolMessage:
    """A signed wire message between intermediate nodes; ``digest`` is its replay key."""

    agreement: str
    window: int
    kind: MessageKind
    sender: str
    nonce: int
    body: bytes
    signature: Signature

    @staticmethod
    def typed_hash_of(
        domain: bytes,
        *,
        agreement: str,
        window: int,
        kind: int,
        sender: str,
        nonce: int,
        body: bytes,
    ) -> TypedDataHash:
        """The EIP-712 digest of a message's fields."""
        values: list[Any] = [agreement, window, kind, sender, nonce, body]
        return typed_data_digest(domain, struct_hash(PROTOCOL_MESSAGE_TYPE, values))

    @classmethod
    def create(
        cls,
        key: PrivateKey,
        domain: bytes,
        *,
        agreement: str,
        window: int,
        kind: MessageKind,
        nonce: int,
        body: bytes,
    ) -> ProtocolMessage:
        """Build and sign a message from ``key``'s node.

        Example::

            ProtocolMessage.create(key, domain, agreement=a, window=3, kind=k, nonce=1, body=b)
        """
        digest = cls.typed_hash_of(
            domain,
            agreement=agreement,
            window=window,
            kind=kind,
            sender=key.address,
            nonce=nonce,
            body=body,
        )
        return cls(agreement, window, kind, key.address, nonce, body, sign_typed_data(key, digest))

    def digest(self, domain: bytes) -> bytes:
        """The signed digest (unique per message: replays repeat it)."""
        return self.typed_hash_of(
            domain,
            agreement=self.agreement,
            window=self.window,
            kind=self.kind,
            sender=self.sender,
            nonce=self.nonce,
            body=self.body,
        ).digest

    def verify(self, domain: bytes) -> None:
        """Raise :class:`InvalidSignature` unless ``sender`` signed this message."""
        if recover_hash(self.digest(domain), self.signature) != self.sender:
            raise InvalidSignature(f"protocol message is not signed by its sender {self.sender}")

    def encode(self) -> bytes:
        """Wire form: ``abi_encode(address,uint256,uint8,address,uint64,bytes,bytes signature)``."""
        return abi_encode(
            _WIRE,
            [
                self.agreement,
                self.window,
                int(self.kind),
                self.sender,
                self.nonce,
                self.body,
                self.signature.to_bytes(),
            ],
        )


def decode_protocol_message(data: bytes) -> ProtocolMessage:
    """Parse the wire form (signature not yet checked); :class:`InvalidInput` if malformed.

    Example: ``message = decode_protocol_message(payload); message.verify(domain)``.
    """
    agreement, window, kind, sender, nonce, body, signature = abi_decode(_WIRE, data)
    try:
        kind_enum = MessageKind(kind)
    except ValueError as exc:
        raise InvalidInput(f"unknown protocol message kind {kind}") from exc
    return ProtocolMessage(
        checksum_address(agreement),
        window,
        kind_enum,
        checksum_address(sender),
        nonce,
        body,
        Signature.from_bytes(signature),
    )
