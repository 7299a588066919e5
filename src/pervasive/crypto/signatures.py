"""Ethereum-style ECDSA signatures on secp256k1: sign, recover, verify.

A signature is the 65 bytes ``r || s || v`` with ``v`` in {27, 28}, exactly what
Solidity/Vyper ``ecrecover(digest, v, r, s)`` takes. Signing always produces low-s
(EIP-2) and recovery rejects high-s, so a signature cannot be rewritten into a
second valid one (malleability) to dodge replay checks.

Two ways to sign:

- :func:`sign_message` signs EIP-191 "personal" messages
  (``keccak256("\\x19Ethereum Signed Message:\\n" + len + message)``), the format
  wallets show to humans. It can never collide with a transaction hash.
- :func:`unsafe_sign_hash` signs any 32-byte digest. It is named ``unsafe`` as in
  eth-account: whoever calls it must make sure the digest is domain-separated
  (EIP-712 digests are; :func:`pervasive.crypto.sign_typed_data` is the safe way).
"""

from __future__ import annotations

from dataclasses import dataclass

import coincurve

from pervasive.crypto.hashing import keccak256
from pervasive.crypto.keys import SECP256K1_ORDER, PrivateKey, PublicKey, checksum_address
from pervasive.errors import InvalidInput, InvalidSignature

__all__ = [
    "Signature",
    "eip191_hash",
    "recover_hash",
    "recover_message",
    "sign_message",
    "unsafe_sign_hash",
    "verify_hash",
]

_HALF_ORDER = SECP256K1_ORDER // 2


@dataclass(frozen=True)
class Signature:
    """An ECDSA signature ``(r, s, v)`` with low ``s`` and ``v`` in {27, 28}."""

    r: int
    s: int
    v: int

    def __post_init__(self) -> None:
        if not 0 < self.r < SECP256K1_ORDER:
            raise InvalidSignature("signature r is out of range")
        if not 0 < self.s <= _HALF_ORDER:
            raise InvalidSignature("signature s is zero or high (not EIP-2 canonical)")
        if self.v not in (27, 28):
            raise InvalidSignature(f"signature v must be 27 or 28, got {self.v}")

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        """Parse 65 bytes ``r || s || v``; ``v`` may be 0/1 or 27/28.

        Raises :class:`InvalidSignature` for a wrong length, out-of-range values or high s.

        Example: ``Signature.from_bytes(sig.to_bytes()) == sig``.
        """
        if len(data) != 65:
            raise InvalidSignature(f"a signature is 65 bytes (r || s || v), got {len(data)}")
        v = data[64]
        return cls(
            r=int.from_bytes(data[0:32], "big"),
            s=int.from_bytes(data[32:64], "big"),
            v=v + 27 if v in (0, 1) else v,
        )

    def to_bytes(self) -> bytes:
        """The 65 bytes ``r || s || v`` (v = 27 or 28). Example: ``len(sig.to_bytes()) == 65``."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([self.v])


def eip191_hash(message: bytes | str) -> bytes:
    """The EIP-191 version-0x45 digest of ``message`` (what ``personal_sign`` signs).

    Example: ``eip191_hash("hi") == keccak256(b"\\x19Ethereum Signed Message:\\n2hi")``.
    """
    data = message.encode("utf-8") if isinstance(message, str) else message
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode("ascii") + data)


def unsafe_sign_hash(key: PrivateKey, digest: bytes) -> Signature:
    """Sign a raw 32-byte digest. Only for digests that are already domain-separated.

    Signing an attacker-chosen digest can sign a transaction; prefer
    :func:`sign_message` or :func:`pervasive.crypto.sign_typed_data`.

    Example: ``unsafe_sign_hash(key, eip712_digest).to_bytes()``.
    """
    if len(digest) != 32:
        raise InvalidInput(f"a digest is 32 bytes, got {len(digest)}")
    raw = key.curve_key.sign_recoverable(digest, hasher=None)
    return Signature.from_bytes(raw)


def sign_message(key: PrivateKey, message: bytes | str) -> Signature:
    """Sign ``message`` the EIP-191 ``personal_sign`` way (as eth-account's ``sign_message``).

    Example: ``recover_message("hello", sign_message(key, "hello")) == key.address``.
    """
    return unsafe_sign_hash(key, eip191_hash(message))


def recover_hash(digest: bytes, signature: Signature | bytes) -> str:
    """The checksummed address that signed ``digest`` (as ``ecrecover`` computes it).

    Raises :class:`InvalidSignature` when no public key can be recovered.

    Example: ``recover_hash(digest, unsafe_sign_hash(key, digest)) == key.address``.
    """
    if len(digest) != 32:
        raise InvalidInput(f"a digest is 32 bytes, got {len(digest)}")
    sig = signature if isinstance(signature, Signature) else Signature.from_bytes(signature)
    compact = sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([sig.v - 27])
    try:
        point = coincurve.PublicKey.from_signature_and_message(compact, digest, hasher=None)
    except (ValueError, TypeError) as exc:
        raise InvalidSignature("no public key recovers from this signature") from exc
    return PublicKey(point.format(compressed=False)[1:]).address


def recover_message(message: bytes | str, signature: Signature | bytes) -> str:
    """The address that signed ``message`` with :func:`sign_message`.

    Example: ``recover_message(b"hi", sign_message(key, b"hi")) == key.address``.
    """
    return recover_hash(eip191_hash(message), signature)


def verify_hash(digest: bytes, signature: Signature | bytes, signer: str) -> None:
    """Check that ``signer`` signed ``digest``; raise :class:`InvalidSignature` otherwise.

    Example: ``verify_hash(digest, sig, node.address)  # returns None or raises``.
    """
    expected = checksum_address(signer)
    recovered = recover_hash(digest, signature)
    if recovered != expected:
        raise InvalidSignature(f"signature is by {recovered}, expected {expected}")
