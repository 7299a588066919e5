"""secp256k1 keys and Ethereum addresses.

A :class:`PrivateKey` never prints its secret (``repr`` shows only the address), so a
key that ends up in a log line or a traceback leaks nothing. Public keys are kept in
the 64-byte uncompressed form ``x || y`` that Ethereum hashes into an address.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field
from functools import cached_property

import coincurve

from pervasive.crypto.hashing import keccak256
from pervasive.errors import InvalidInput

__all__ = [
    "SECP256K1_ORDER",
    "PrivateKey",
    "PublicKey",
    "address_from_public_key",
    "checksum_address",
    "generate_private_key",
]

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The order ``n`` of the secp256k1 group."""


@functools.lru_cache(maxsize=4096)
def checksum_address(address: str | bytes) -> str:
    """The EIP-55 mixed-case form of a 20-byte address (given as bytes or hex).

    Raises :class:`InvalidInput` for anything that is not 20 bytes, and for a
    mixed-case string whose checksum is wrong (a typo).

    Example: ``checksum_address("0xcd2a3d9f938e13cd947ec05abc7fe734df8dd826")``
    is ``"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"``.
    """
    if isinstance(address, bytes):
        if len(address) != 20:
            raise InvalidInput(f"an address is 20 bytes, got {len(address)}")
        hex_body = address.hex()
        given = None
    else:
        body = address.removeprefix("0x").removeprefix("0X")
        if len(body) != 40:
            raise InvalidInput(f"an address is 40 hex digits after 0x, got {address!r}")
        try:
            bytes.fromhex(body)
        except ValueError as exc:
            raise InvalidInput(f"address {address!r} is not hexadecimal") from exc
        hex_body = body.lower()
        given = body
    digest = keccak256(hex_body.encode("ascii")).hex()
    result = "".join(
        ch.upper() if ch.isalpha() and int(digest[i], 16) >= 8 else ch
        for i, ch in enumerate(hex_body)
    )
    if given is not None and given not in (given.lower(), given.upper()) and given != result:
        raise InvalidInput(f"address {address!r} has a wrong EIP-55 checksum (mistyped?)")
    return "0x" + result


def address_from_public_key(public_key: bytes) -> str:
    """The checksummed Ethereum address of a public key (64-byte ``x||y``, 65 or 33 bytes).

    Example: ``address_from_public_key(key.public_key.to_bytes())  # '0x...'``.
    """
    return PublicKey.from_bytes(public_key).address


@dataclass(frozen=True)
class PublicKey:
    """A secp256k1 public key in the uncompressed 64-byte form ``x || y``."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 64:
            raise InvalidInput(f"a public key is 64 bytes (x || y), got {len(self.raw)}")

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        """Parse 64 (``x||y``), 65 (``04||x||y``) or 33 (compressed) bytes.

        Raises :class:`InvalidInput` if the bytes are not a point on the curve.

        Example: ``PublicKey.from_bytes(bytes.fromhex("02" + "79be66..."))``.
        """
        candidate = b"\x04" + data if len(data) == 64 else data
        try:
            point = coincurve.PublicKey(candidate)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"not a secp256k1 public key: {data.hex()}") from exc
        return cls(point.format(compressed=False)[1:])

    def to_bytes(self) -> bytes:
        """The 64 bytes ``x || y``. Example: ``len(pk.to_bytes()) == 64``."""
        return self.raw

    def to_compressed(self) -> bytes:
        """The 33-byte SEC1 compressed form. Example: ``pk.to_compressed()[0] in (2, 3)``."""
        parity = 3 if self.raw[63] & 1 else 2
        return bytes([parity]) + self.raw[:32]

    @cached_property
    def address(self) -> str:
        """The checksummed address: the last 20 bytes of ``keccak256(x || y)``."""
        return checksum_address(keccak256(self.raw)[12:])


@dataclass(frozen=True)
class PrivateKey:
    """A secp256k1 private key. Its ``repr`` shows the address, never the secret."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise InvalidInput("a private key is 32 bytes")
        scalar = int.from_bytes(self.secret, "big")
        if not 0 < scalar < SECP256K1_ORDER:
            raise InvalidInput("a private key must be in [1, n-1] of secp256k1")

    def __repr__(self) -> str:
        return f"PrivateKey(address={self.address})"

    @classmethod
    def from_hex(cls, text: str) -> PrivateKey:
        """Parse a 64-hex-digit key, with or without ``0x``.

        Example: ``PrivateKey.from_hex("0x" + "01" * 32)``.
        """
        try:
            return cls(bytes.fromhex(text.removeprefix("0x")))
        except ValueError as exc:
            raise InvalidInput("a private key is 64 hexadecimal digits") from exc

    @cached_property
    def curve_key(self) -> coincurve.PrivateKey:
        """The libsecp256k1 key, built once: building one derives the public key (~50 µs),
        which every signature would otherwise pay again."""
        return coincurve.PrivateKey(self.secret)

    @cached_property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        point = self.curve_key.public_key
        return PublicKey(point.format(compressed=False)[1:])

    @cached_property
    def address(self) -> str:
        """The checksummed Ethereum address of this key."""
        return self.public_key.address


def generate_private_key() -> PrivateKey:
    """A fresh key from the operating system's CSPRNG.

    Example: ``key = generate_private_key(); key.address``.
    """
    while True:
        candidate = secrets.token_bytes(32)
        if 0 < int.from_bytes(candidate, "big") < SECP256K1_ORDER:
            return PrivateKey(candidate)
