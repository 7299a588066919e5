"""The signed envelope every message between committee members travels in.

A committee is a group of mutually distrusting processes (DIVERSITY's intermediate
nodes, paper 002; a notary committee, paper 003; an oracle committee, paper 001) that
exchange messages over an untrusted broker. Each message is an EIP-712 struct signed
by its sender in the session's domain (the domain names the chain and the contract the
session serves, so a message cannot be replayed into another session):

    Envelope(address session,uint256 round,uint8 kind,address sender,uint64 nonce,bytes body)

``session`` is the contract the committee serves (an agreement, a notary contract),
``round`` the protocol round (a window ``t``), ``kind`` the subsystem's message kind,
``nonce`` unique per sender (see :mod:`pervasive.committee.nonces`) and ``body`` the
subsystem's typed body in ABI form. The wire form is
``abi_encode(address, uint256, uint8, address, uint64, bytes body, bytes signature)``,
written and read word by word (a test pins both to eth-abi).

Example::

    envelope = Envelope.create(key, domain, session=a, round=3, kind=1, nonce=n, body=b)
    received = decode_envelope(envelope.encode())
    received.verify(domain)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from pervasive.crypto import (
    PrivateKey,
    Signature,
    TypedDataHash,
    abi_decode,
    checksum_address,
    recover_hash,
    sign_typed_data,
    struct_hash,
    typed_data_digest,
)
from pervasive.errors import InvalidInput, InvalidSignature

__all__ = ["ENVELOPE_TYPE", "Envelope", "decode_envelope"]

ENVELOPE_TYPE = (
    "Envelope(address session,uint256 round,uint8 kind,address sender,uint64 nonce,bytes body)"
)
"""The EIP-712 type every member signs for each message it sends."""

_WIRE = ["address", "uint256", "uint8", "address", "uint64", "bytes", "bytes"]
_WIRE_HEAD = 7 * 32


@dataclass(frozen=True)
class Envelope:
    """A signed message between members; its :meth:`digest` is its replay key."""

    session: str
    round: int
    kind: int
    sender: str
    nonce: int
    body: bytes
    signature: Signature

    @staticmethod
    def typed_hash_of(
        domain: bytes,
        *,
        session: str,
        round: int,
        kind: int,
        sender: str,
        nonce: int,
        body: bytes,
    ) -> TypedDataHash:
        """The EIP-712 digest of an envelope's fields in ``domain``."""
        values: list[Any] = [session, round, kind, sender, nonce, body]
        return typed_data_digest(domain, struct_hash(ENVELOPE_TYPE, values))

    @classmethod
    def create(
        cls,
        key: PrivateKey,
        domain: bytes,
        *,
        session: str,
        round: int,
        kind: int,
        nonce: int,
        body: bytes,
    ) -> Envelope:
        """Build and sign an envelope from ``key``'s member.

        Example: ``Envelope.create(key, domain, session=a, round=3, kind=1, nonce=1, body=b)``.
        """
        digest = cls.typed_hash_of(
            domain, session=session, round=round, kind=int(kind), sender=key.address,
            nonce=nonce, body=body,
        )  # fmt: skip
        signature = sign_typed_data(key, digest)
        return cls(session, round, int(kind), key.address, nonce, body, signature)

    def digest(self, domain: bytes) -> bytes:
        """The signed digest (unique per message: a replay repeats it)."""
        return self.typed_hash_of(
            domain, session=self.session, round=self.round, kind=self.kind,
            sender=self.sender, nonce=self.nonce, body=self.body,
        ).digest  # fmt: skip

    def verify(self, domain: bytes) -> bytes:
        """Raise :class:`InvalidSignature` unless ``sender`` signed it; return the digest."""
        digest = self.digest(domain)
        if recover_hash(digest, self.signature) != self.sender:
            raise InvalidSignature(f"message is not signed by its sender {self.sender}")
        return digest

    def encode(self) -> bytes:
        """Wire form: ``abi_encode(address,uint256,uint8,address,uint64,bytes,bytes signature)``."""
        return _encode_wire(
            (
                self.session, self.round, self.kind, self.sender, self.nonce, self.body,
                self.signature.to_bytes(),
            )
        )  # fmt: skip


def decode_envelope(data: bytes) -> Envelope:
    """Parse the wire form (signature not yet checked); :class:`InvalidInput` if malformed.

    Example: ``envelope = decode_envelope(payload); envelope.verify(domain)``.
    """
    fields = _decode_wire_fast(data)
    if fields is None:
        session, round_, kind, sender, nonce, body, signature = abi_decode(_WIRE, data)
    else:
        session, round_, kind, sender, nonce, body, signature = fields
    return Envelope(
        checksum_address(session),
        round_,
        kind,
        checksum_address(sender),
        nonce,
        body,
        Signature.from_bytes(signature),
    )


_WireFields = tuple[str, int, int, str, int, bytes, bytes]
"""``(session, round, kind, sender, nonce, body, signature)``."""


def _address_word(address: str) -> bytes:
    if len(address) != 42 or address[:2] not in ("0x", "0X"):
        raise InvalidInput(f"{address!r} is not an address")
    try:
        return bytes(12) + bytes.fromhex(address[2:])
    except ValueError as exc:
        raise InvalidInput(f"{address!r} is not an address") from exc


def _dynamic(data: bytes) -> bytes:
    return len(data).to_bytes(32, "big") + data + bytes(-len(data) % 32)


def _encode_wire(fields: _WireFields) -> bytes:
    session, round_, kind, sender, nonce, body, signature = fields
    if not (0 <= round_ < 1 << 256 and 0 <= kind < 1 << 8 and 0 <= nonce < 1 << 64):
        raise InvalidInput("round, kind or nonce is out of its ABI range")
    body_part = _dynamic(body)
    return b"".join(
        (
            _address_word(session),
            round_.to_bytes(32, "big"),
            kind.to_bytes(32, "big"),
            _address_word(sender),
            nonce.to_bytes(32, "big"),
            _WIRE_HEAD.to_bytes(32, "big"),
            (_WIRE_HEAD + len(body_part)).to_bytes(32, "big"),
            body_part,
            _dynamic(signature),
        )
    )


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
    round_ = int.from_bytes(data[32:64], "big")
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
    session, sender = _checksummed(data[12:32]), _checksummed(data[108:128])
    decoded = (session, round_, kind, sender, nonce, body, signature)
    if sig_length != 65 or _encode_wire(decoded) != data:
        return None
    return decoded
