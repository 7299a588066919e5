"""The message kinds of the intermediate-node protocol and their typed bodies (paper 002, §3).

Every message between nodes (and a party's window request) is a
:class:`~pervasive.committee.Envelope` in the agreement's EIP-712 domain: ``session``
is the agreement ``a``, ``round`` the window ``t``, ``kind`` a :class:`MessageKind`.
Its ``body`` is decoded **once**, at receipt, by :func:`decode_body` into one of the
typed bodies below; the protocol never sees body bytes. The ABI layouts (see
``docs/offchain-protocol.md``):

============================ ==================================================================
kind                         body
============================ ==================================================================
PROOF_RING, PROOF_TO_LEADER, :class:`ProofsBody`: ``((address,bytes32,bytes32,address[],bytes[])[]
PROOF_COMPLETE,              proofs, bool, uint256, bytes, bytes32, bytes32, bytes32, address[],
LEADER_BUNDLE                bytes[])``; the tail is the fast protocol's compact ``P_{t-1}``
SIGNATURES                   :class:`SignaturesBody`: ``(address[], bytes[], bool, uint256, bytes)``
REVEAL                       :class:`RevealBody`: ``(bool present, bytes result, bytes32 secret,
                             bytes signature)``
DISPUTE_NOTICE               :class:`DisputeNotice`: ``(uint8 kind, address accused)``
UPDATE_SIGNATURE             :class:`UpdateSignature`: ``(bytes signature)`` on the window's
                             :class:`~pervasive.domain.Update`
WINDOW_REQUEST               :class:`WindowRequest`: empty
WINDOW_DATA                  :class:`WindowReply`: ``(bool held, bytes data)``
============================ ==================================================================
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from pervasive.committee import Envelope
from pervasive.crypto import Signature, abi_decode, abi_encode, checksum_address
from pervasive.domain import Update
from pervasive.errors import InvalidInput
from pervasive.offchain.proofs_body import decode_rows, encode_rows
from pervasive.offchain.signed import ProofOfComputation, Reveal, SignedProof

__all__ = [
    "Body",
    "DisputeNotice",
    "MessageKind",
    "ProofsBody",
    "RevealBody",
    "SignaturesBody",
    "UpdateSignature",
    "WindowReply",
    "WindowRequest",
    "decode_body",
    "kind_name",
]


class MessageKind(enum.IntEnum):
    """Kinds of protocol messages (the envelope's ``uint8 kind``)."""

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
    UPDATE_SIGNATURE = 10
    """Ring and leader protocols: a node's signature on the agreed window's contract update."""


def kind_name(kind: int) -> str:
    """The name of message kind ``kind`` (for counters). Example: ``kind_name(6) == "REVEAL"``."""
    try:
        return MessageKind(kind).name
    except ValueError:
        return f"KIND_{kind}"


@dataclass(frozen=True)
class ProofsBody:
    """Signed proofs of computation and, in the fast protocol, the leader's compact ``P_{t-1}``."""

    proofs: tuple[SignedProof, ...]
    compact: Update | None = None
    compact_signatures: Mapping[str, Signature] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The ABI body, written by :mod:`pervasive.offchain.proofs_body`."""
        rows = tuple(
            (
                _address_bytes(p.author),
                p.proof.commitment,
                p.proof.window_hash,
                tuple(_address_bytes(s) for s in p.signatures),
                tuple(s.to_bytes() for s in p.signatures.values()),
            )
            for p in self.proofs
        )
        c, signatures = self.compact, self.compact_signatures
        return encode_rows(
            (
                rows,
                c is not None,
                c.window if c else 0,
                c.result if c else b"",
                c.window_hash if c else bytes(32),
                c.proofs_hash if c else bytes(32),
                c.data_hash if c else bytes(32),
                tuple(_address_bytes(s) for s in signatures),
                tuple(s.to_bytes() for s in signatures.values()),
            )
        )


@dataclass(frozen=True)
class SignaturesBody:
    """A node's signature on each proof of a leader's bundle, and on ``P_{t-1}`` if asked."""

    signatures: Mapping[str, Signature]
    """Proof author -> this node's signature on that proof."""
    compact: tuple[int, Signature] | None = None
    """``(u, signature)`` on the compact update of window ``u``."""

    def encode(self) -> bytes:
        """``abi_encode(address[] authors, bytes[] signatures, bool, uint256 u, bytes sig)``."""
        c = self.compact
        return abi_encode(
            _SIGNATURES,
            [
                list(self.signatures),
                [s.to_bytes() for s in self.signatures.values()],
                c is not None,
                c[0] if c else 0,
                c[1].to_bytes() if c else b"",
            ],
        )


@dataclass(frozen=True)
class RevealBody:
    """``c_{t,i}`` and its author's signature (the author is the envelope's sender)."""

    reveal: Reveal
    signature: Signature

    def encode(self) -> bytes:
        """``abi_encode(bool present, bytes result, bytes32 secret, bytes signature)``."""
        r = self.reveal
        return abi_encode(
            _REVEAL, [r.result is not None, r.result or b"", r.secret, self.signature.to_bytes()]
        )


@dataclass(frozen=True)
class DisputeNotice:
    """The sender opened a dispute of kind ``kind`` (a ``DisputeKind`` value)."""

    kind: int
    accused: str | None = None

    def encode(self) -> bytes:
        """``abi_encode(uint8 kind, address accused)``; nobody accused is the zero address."""
        return abi_encode(_DISPUTE, [self.kind, self.accused or "0x" + "00" * 20])


@dataclass(frozen=True)
class UpdateSignature:
    """The sender's signature on the contract :class:`~pervasive.domain.Update` of the window."""

    signature: Signature

    def encode(self) -> bytes:
        """``abi_encode(bytes signature)``."""
        return abi_encode(["bytes"], [self.signature.to_bytes()])


@dataclass(frozen=True)
class WindowRequest:
    """A party's or node's request for the stored ``w[t]`` (the envelope's round)."""

    def encode(self) -> bytes:
        """Empty."""
        return b""


@dataclass(frozen=True)
class WindowReply:
    """A node's answer: the packed window data, or ``held`` false."""

    held: bool
    data: bytes = b""

    def encode(self) -> bytes:
        """``abi_encode(bool held, bytes data)``."""
        return abi_encode(_REPLY, [self.held, self.data])


Body = (
    ProofsBody
    | SignaturesBody
    | RevealBody
    | DisputeNotice
    | UpdateSignature
    | WindowRequest
    | WindowReply
)

_PROOF_TUPLE = "(address,bytes32,bytes32,address[],bytes[])"
_PROOFS = [f"{_PROOF_TUPLE}[]", "bool", "uint256", "bytes", "bytes32", "bytes32", "bytes32"]
_PROOFS += ["address[]", "bytes[]"]
_SIGNATURES = ["address[]", "bytes[]", "bool", "uint256", "bytes"]
_REVEAL = ["bool", "bytes", "bytes32", "bytes"]
_DISPUTE = ["uint8", "address"]
_REPLY = ["bool", "bytes"]
_PROOF_KINDS = frozenset(
    {
        MessageKind.PROOF_RING,
        MessageKind.PROOF_COMPLETE,
        MessageKind.PROOF_TO_LEADER,
        MessageKind.LEADER_BUNDLE,
    }
)


def _address_bytes(address: str) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x"))
    if len(raw) != 20:
        raise InvalidInput(f"{address!r} is not a 20-byte address")
    return raw


def decode_body(envelope: Envelope) -> Body:
    """The typed body of ``envelope``; :class:`InvalidInput` for an unknown kind or bad body.

    Example: ``body = decode_body(decode_envelope(payload))``.
    """
    try:
        kind = MessageKind(envelope.kind)
    except ValueError:
        raise InvalidInput(f"unknown protocol message kind {envelope.kind}") from None
    if kind in _PROOF_KINDS:
        return _proofs(envelope.body, envelope.session, envelope.round)
    if kind is MessageKind.SIGNATURES:
        return _signatures(envelope.body)
    if kind is MessageKind.REVEAL:
        present, result, secret, signature = abi_decode(_REVEAL, envelope.body)
        if not present and result:
            raise InvalidInput("a null reveal must carry an empty result")
        reveal = Reveal(envelope.session, envelope.round, result if present else None, secret)
        return RevealBody(reveal, Signature.from_bytes(signature))
    if kind is MessageKind.DISPUTE_NOTICE:
        dispute_kind, accused = abi_decode(_DISPUTE, envelope.body)
        address = checksum_address(accused)
        return DisputeNotice(dispute_kind, None if int(address, 16) == 0 else address)
    if kind is MessageKind.UPDATE_SIGNATURE:
        (signature,) = abi_decode(["bytes"], envelope.body)
        return UpdateSignature(Signature.from_bytes(signature))
    if kind is MessageKind.WINDOW_REQUEST:
        if envelope.body:
            raise InvalidInput("a window request has an empty body")
        return WindowRequest()
    held, data = abi_decode(_REPLY, envelope.body)
    return WindowReply(held, data)


def _signatures(body: bytes) -> SignaturesBody:
    authors, sigs, has_compact, compact_window, compact = abi_decode(_SIGNATURES, body)
    if len(authors) != len(sigs):
        raise InvalidInput("signature authors and signatures do not pair up")
    pairs = {
        checksum_address(a): Signature.from_bytes(s) for a, s in zip(authors, sigs, strict=True)
    }
    return SignaturesBody(
        pairs, (compact_window, Signature.from_bytes(compact)) if has_compact else None
    )


def _proofs(body: bytes, agreement: str, window: int) -> ProofsBody:
    fast = decode_rows(body)  # canonical bodies (all our nodes write) without eth-abi
    values = fast if fast is not None else abi_decode(_PROOFS, body)
    rows, has_compact, c_window, c_result, c_hash, c_proofs, c_data, c_signers, c_sigs = values
    proofs = []
    for author, commit, window_hash, signers, sigs in rows:
        if len(signers) != len(sigs) or len(set(signers)) != len(signers):
            raise InvalidInput("proof signers and signatures do not pair up")
        signatures = {
            _address(s): Signature.from_bytes(b) for s, b in zip(signers, sigs, strict=True)
        }
        proof = ProofOfComputation(commit, window, agreement, window_hash)
        proofs.append(SignedProof(_address(author), proof, signatures))
    if len(c_signers) != len(c_sigs) or len(set(c_signers)) != len(c_signers):
        raise InvalidInput("compact update signers and signatures do not pair up")
    compact = (
        Update(agreement, c_window, c_result, c_hash, c_proofs, c_data) if has_compact else None
    )
    compact_signatures = {
        _address(s): Signature.from_bytes(b) for s, b in zip(c_signers, c_sigs, strict=True)
    }
    return ProofsBody(tuple(proofs), compact, compact_signatures)


@functools.lru_cache(maxsize=256)
def _address(value: bytes | str) -> str:
    """Checksummed (cached: a window's bodies name the same few nodes again and again)."""
    return checksum_address(value)
