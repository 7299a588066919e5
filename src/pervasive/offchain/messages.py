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
- compact update ``P_{t-1}`` of the fast protocol, the very struct the Agreement
  contract verifies: ``Update(address agreement,uint256 window,bytes result,
  bytes32 windowHash,bytes32 proofsHash,bytes32 dataHash)``;
- every wire message: ``ProtocolMessage(address agreement,uint256 window,uint8 kind,
  address sender,uint64 nonce,bytes body)`` (one line, no spaces after commas).
"""

from __future__ import annotations

import enum
import functools
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
from pervasive.offchain.proofs_body import decode_rows, encode_rows

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
UPDATE_TYPE = (
    "Update(address agreement,uint256 window,bytes result,bytes32 windowHash,"
    "bytes32 proofsHash,bytes32 dataHash)"
)
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
    """The fast protocol's ``P_{t-1} = f(w[t-1])``: one struct signed by every node.

    It is the Agreement contract's ``Update`` struct, so the signatures the leader
    collects are the ones the contract's ``update`` checks: ``proofs_hash`` is
    ``keccak256(c_1 || ... || c_n)`` over the agreed commitments (it binds ``P_t``) and
    ``data_hash`` is ``keccak256`` of the packed window data under on-chain proof of
    storage, zero otherwise.
    """

    agreement: str
    window: int
    result: bytes
    window_hash: bytes
    proofs_hash: bytes = bytes(32)
    data_hash: bytes = bytes(32)

    def typed_hash(self, domain: bytes) -> TypedDataHash:
        """The EIP-712 digest every node signs for the compact on-chain update."""
        values = [
            self.agreement,
            self.window,
            self.result,
            self.window_hash,
            self.proofs_hash,
            self.data_hash,
        ]
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
    WINDOW_REQUEST = 8
    """A party or node asks for the stored ``w[t]`` (off-chain proof of storage)."""
    WINDOW_DATA = 9
    """A node's answer (the request's nonce in the envelope): ``(bool held, bytes data)``."""


_PROOF_TUPLE = "(address,bytes32,bytes32,address[],bytes[])"
_PROOFS_BODY = [
    f"{_PROOF_TUPLE}[]",
    "bool",
    "uint256",
    "bytes",
    "bytes32",
    "bytes32",
    "bytes32",
    "address[]",
    "bytes[]",
]
_SIGNATURES_BODY = ["address[]", "bytes[]", "bool", "uint256", "bytes"]
_REVEAL_BODY = ["bool", "bytes", "bytes32", "bytes"]
_DISPUTE_BODY = ["uint8", "address"]
_WIRE = ["address", "uint256", "uint8", "address", "uint64", "bytes", "bytes"]


def encode_proofs_body(
    proofs: tuple[SignedProof, ...],
    compact: CompactUpdate | None = None,
    compact_signatures: Mapping[str, Signature] | None = None,
) -> bytes:
    """Body of PROOF_* and LEADER_BUNDLE messages: proofs, then an optional compact update.

    ``abi_encode(_PROOFS_BODY, ...)``, written by :mod:`pervasive.offchain.proofs_body`.
    """
    rows = tuple(
        (
            _address_bytes(p.author),
            p.proof.commitment,
            p.proof.window_hash,
            tuple(_address_bytes(s) for s in p.signatures),
            tuple(s.to_bytes() for s in p.signatures.values()),
        )
        for p in proofs
    )
    signatures = compact_signatures or {}
    return encode_rows(
        (
            rows,
            compact is not None,
            compact.window if compact else 0,
            compact.result if compact else b"",
            compact.window_hash if compact else bytes(32),
            compact.proofs_hash if compact else bytes(32),
            compact.data_hash if compact else bytes(32),
            tuple(_address_bytes(s) for s in signatures),
            tuple(s.to_bytes() for s in signatures.values()),
        )
    )


def _address_bytes(address: str) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x"))
    if len(raw) != 20:
        raise InvalidInput(f"{address!r} is not a 20-byte address")
    return raw


def decode_proofs_body(
    body: bytes, agreement: str, window: int
) -> tuple[tuple[SignedProof, ...], CompactUpdate | None, dict[str, Signature]]:
    """Inverse of :func:`encode_proofs_body`; ``window``/``agreement`` come from the envelope.

    A leader's bundle is read by several steps of the protocol; the decoding is
    remembered for the last few bodies (the results are immutable, the dict is a copy).
    """
    proofs, compact, signatures = _decode_proofs_body(body, agreement, window)
    return proofs, compact, dict(signatures)


@functools.lru_cache(maxsize=32)
def _decode_proofs_body(
    body: bytes, agreement: str, window: int
) -> tuple[tuple[SignedProof, ...], CompactUpdate | None, dict[str, Signature]]:
    fast = decode_rows(body)  # canonical bodies (all our nodes write) without eth-abi
    values = fast if fast is not None else abi_decode(_PROOFS_BODY, body)
    rows, has_compact, c_window, c_result, c_hash, c_proofs, c_data, c_signers, c_sigs = values
    proofs = []
    for author, commit, window_hash, signers, sigs in rows:
        if len(signers) != len(sigs) or len(set(signers)) != len(signers):
            raise InvalidInput("proof signers and signatures do not pair up")
        signatures = {
            checksum_address(s): Signature.from_bytes(b) for s, b in zip(signers, sigs, strict=True)
        }
        proof = ProofOfComputation(commit, window, agreement, window_hash)
        proofs.append(SignedProof(checksum_address(author), proof, signatures))
    compact = (
        CompactUpdate(agreement, c_window, c_result, c_hash, c_proofs, c_data)
        if has_compact
        else None
    )
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

    def verify(self, domain: bytes) -> bytes:
        """Raise :class:`InvalidSignature` unless ``sender`` signed it; return the digest."""
        digest = self.digest(domain)
        if recover_hash(digest, self.signature) != self.sender:
            raise InvalidSignature(f"protocol message is not signed by its sender {self.sender}")
        return digest

    def encode(self) -> bytes:
        """Wire form: ``abi_encode(address,uint256,uint8,address,uint64,bytes,bytes signature)``.

        Written word by word (the layout is fixed); a test pins it to ``abi_encode``.
        """
        return _encode_wire(
            (
                self.agreement,
                self.window,
                int(self.kind),
                self.sender,
                self.nonce,
                self.body,
                self.signature.to_bytes(),
            )
        )


def _address_word(address: str) -> bytes:
    if len(address) != 42 or address[:2] not in ("0x", "0X"):
        raise InvalidInput(f"{address!r} is not an address")
    try:
        return bytes(12) + bytes.fromhex(address[2:])
    except ValueError as exc:
        raise InvalidInput(f"{address!r} is not an address") from exc


def _dynamic(data: bytes) -> bytes:
    return len(data).to_bytes(32, "big") + data + bytes(-len(data) % 32)


_WireFields = tuple[str, int, int, str, int, bytes, bytes]
"""``(agreement, window, kind, sender, nonce, body, signature)``."""


def _encode_wire(fields: _WireFields) -> bytes:
    agreement, window, kind, sender, nonce, body, signature = fields
    if not (0 <= window < 1 << 256 and 0 <= kind < 1 << 8 and 0 <= nonce < 1 << 64):
        raise InvalidInput("window, kind or nonce is out of its ABI range")
    body_part = _dynamic(body)
    return b"".join(
        (
            _address_word(agreement),
            window.to_bytes(32, "big"),
            kind.to_bytes(32, "big"),
            _address_word(sender),
            nonce.to_bytes(32, "big"),
            _WIRE_HEAD.to_bytes(32, "big"),
            (_WIRE_HEAD + len(body_part)).to_bytes(32, "big"),
            body_part,
            _dynamic(signature),
        )
    )


_WIRE_HEAD = 7 * 32


@functools.lru_cache(maxsize=256)
def _checksummed(word: bytes) -> str:
    return checksum_address("0x" + word.hex())


def _decode_wire_fast(data: bytes) -> _WireFields | None:
    """Parse the canonical wire form by offsets; ``None`` for anything else.

    Whatever is not byte-for-byte what :func:`_encode_wire` produces is left to the
    reference decoder (``abi_decode``), so both accept and refuse the same inputs.
    """
    if len(data) < _WIRE_HEAD + 64 or data[0:12] != bytes(12) or data[96:108] != bytes(12):
        return None
    window = int.from_bytes(data[32:64], "big")
    kind = int.from_bytes(data[64:96], "big")
    nonce = int.from_bytes(data[128:160], "big")
    if kind >= 1 << 8 or nonce >= 1 << 64:
        return None
    length = int.from_bytes(data[_WIRE_HEAD : _WIRE_HEAD + 32], "big")
    if length > len(data):
        return None
    body = data[_WIRE_HEAD + 32 : _WIRE_HEAD + 32 + length]
    at = _WIRE_HEAD + 32 + length + (-length % 32)
    sig_length = int.from_bytes(data[at : at + 32], "big")
    signature = data[at + 32 : at + 32 + sig_length]
    agreement, sender = _checksummed(data[12:32]), _checksummed(data[108:128])
    decoded = (agreement, window, kind, sender, nonce, body, signature)
    if sig_length != 65 or _encode_wire(decoded) != data:
        return None
    return decoded


def decode_protocol_message(data: bytes) -> ProtocolMessage:
    """Parse the wire form (signature not yet checked); :class:`InvalidInput` if malformed.

    Example: ``message = decode_protocol_message(payload); message.verify(domain)``.
    """
    fast = _decode_wire_fast(data)
    if fast is not None:
        agreement, window, kind, sender, nonce, body, signature = fast
    else:
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
