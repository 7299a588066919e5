"""Fast local signing of EIP-1559 transactions.

eth-account's ``sign_transaction`` validates and normalises a dict on every call and
costs about a millisecond; submitting thousands of contract calls a second needs
~20x less. This module encodes the EIP-1559 payload with a minimal RLP encoder (the
payload is only integers, byte strings and one empty list) and signs its hash with
coincurve directly. ``tests/unit/chain/test_signing.py`` checks, by property test,
that every byte equals eth-account's output for the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from coincurve import PrivateKey
from eth_hash.auto import keccak

from pervasive.errors import InvalidInput

__all__ = ["SignedTransaction", "UnsignedTransaction", "rlp_encode", "sign_transaction"]

_EIP1559 = b"\x02"
_EMPTY_LIST = b"\xc0"


def _length_prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(encoded),)) + encoded


def _encode_bytes(value: bytes) -> bytes:
    if len(value) == 1 and value[0] < 0x80:
        return value
    return _length_prefix(len(value), 0x80) + value


def _encode_int(value: int) -> bytes:
    if value < 0:
        raise InvalidInput(f"RLP cannot encode the negative integer {value}")
    if value == 0:
        return b"\x80"
    return _encode_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def rlp_encode(item: int | bytes | list[object] | tuple[object, ...]) -> bytes:
    """RLP-encode integers, byte strings and (nested) lists of them.

    Example: ``rlp_encode([1, b"dog", []]).hex() == "c6018364 6f67c0".replace(" ", "")``.
    """
    if isinstance(item, bool):
        raise InvalidInput("RLP has no booleans; pass 0 or 1")
    if isinstance(item, int):
        return _encode_int(item)
    if isinstance(item, bytes | bytearray):
        return _encode_bytes(bytes(item))
    if isinstance(item, list | tuple):
        payload = b"".join(rlp_encode(child) for child in item)  # type: ignore[arg-type]
        return _length_prefix(len(payload), 0xC0) + payload
    raise InvalidInput(f"RLP cannot encode a {type(item).__name__}")


@dataclass(frozen=True)
class UnsignedTransaction:
    """The fields of an EIP-1559 (type 2) transaction. ``to=None`` deploys a contract."""

    chain_id: int
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas: int
    to: bytes | None
    value: int
    data: bytes

    def encoded_fields(self) -> bytes:
        """The RLP encodings of the unsigned fields, concatenated, in EIP-1559 order."""
        return b"".join(
            (
                _encode_int(self.chain_id),
                _encode_int(self.nonce),
                _encode_int(self.max_priority_fee_per_gas),
                _encode_int(self.max_fee_per_gas),
                _encode_int(self.gas),
                _encode_bytes(self.to or b""),
                _encode_int(self.value),
                _encode_bytes(self.data),
                _EMPTY_LIST,  # access list
            )
        )


@dataclass(frozen=True)
class SignedTransaction:
    """A signed transaction ready for ``eth_sendRawTransaction``."""

    raw: bytes
    hash: bytes
    nonce: int

    @property
    def hash_hex(self) -> str:
        """The transaction hash as 0x-hex, as nodes report it."""
        return "0x" + self.hash.hex()


def sign_transaction(tx: UnsignedTransaction, key: PrivateKey) -> SignedTransaction:
    """Sign ``tx`` with ``key`` (a ``coincurve.PrivateKey``) and encode it for the wire.

    Example: ``sign_transaction(tx, PrivateKey(secret)).raw.hex()``.
    """
    if tx.to is not None and len(tx.to) != 20:
        raise InvalidInput(f"a transaction's 'to' is 20 bytes, got {len(tx.to)}")
    fields = tx.encoded_fields()
    digest = keccak(_EIP1559 + _length_prefix(len(fields), 0xC0) + fields)
    signature = key.sign_recoverable(digest, hasher=None)
    signed = (
        fields
        + _encode_int(signature[64])
        + _encode_int(int.from_bytes(signature[0:32], "big"))
        + _encode_int(int.from_bytes(signature[32:64], "big"))
    )
    raw = _EIP1559 + _length_prefix(len(signed), 0xC0) + signed
    return SignedTransaction(raw=raw, hash=keccak(raw), nonce=tx.nonce)
