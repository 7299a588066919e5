"""EIP-712 typed structured data: domain separators, struct hashes, digests.

Two entry points:

- :func:`hash_typed_data` takes a full EIP-712 document (``types``, ``primaryType``,
  ``domain``, ``message``), as wallets and ``eth_signTypedData_v4`` do, and returns
  its domain separator, struct hash and digest. It is checked against all 123
  go-ethereum vectors (``tests/unit/crypto/test_crypto_typed_data.py``).
- :func:`struct_hash`, :func:`domain_separator` and :func:`typed_data_digest` build
  the same values for flat structs straight from ABI encodings. The off-chain
  protocol uses these (fast, no JSON), and the tests check they agree with
  :func:`hash_typed_data`. They are also literally what a Vyper contract writes::

      keccak256(concat(b"\\x19\\x01", DOMAIN_SEPARATOR,
                       keccak256(abi_encode(TYPEHASH, field_1, ..., field_n))))

  where ``bytes``/``string`` fields are replaced by their ``keccak256``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.exceptions import EncodingError
from eth_account.messages import encode_typed_data

from pervasive.crypto.hashing import abi_encode, keccak256
from pervasive.crypto.keys import PrivateKey
from pervasive.crypto.signatures import Signature, unsafe_sign_hash
from pervasive.errors import InvalidInput

__all__ = [
    "TypedDataHash",
    "domain_separator",
    "hash_typed_data",
    "sign_typed_data",
    "struct_hash",
    "type_hash",
    "typed_data_digest",
]


@dataclass(frozen=True)
class TypedDataHash:
    """The three hashes of an EIP-712 document; ``digest`` is what gets signed."""

    domain_separator: bytes
    struct_hash: bytes
    digest: bytes


def typed_data_digest(domain_sep: bytes, struct: bytes) -> TypedDataHash:
    """``keccak256(0x19 0x01 || domain_separator || struct_hash)``.

    Example: ``typed_data_digest(domain_separator(...), struct_hash(...)).digest``.
    """
    if len(domain_sep) != 32 or len(struct) != 32:
        raise InvalidInput("an EIP-712 domain separator and struct hash are 32 bytes each")
    return TypedDataHash(domain_sep, struct, keccak256(b"\x19\x01" + domain_sep + struct))


def hash_typed_data(document: Mapping[str, Any]) -> TypedDataHash:
    """Hash a full EIP-712 document (the ``eth_signTypedData_v4`` JSON shape).

    ``document`` has ``types`` (including ``EIP712Domain``), ``primaryType``,
    ``domain`` and ``message``. Raises :class:`InvalidInput` if it is malformed.

    Example::

        h = hash_typed_data({"types": {...}, "primaryType": "Mail", "domain": {...},
                             "message": {...}})
        h.digest  # 32 bytes to sign
    """
    try:
        signable = encode_typed_data(full_message=dict(document))
    except (EncodingError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"not a valid EIP-712 document: {exc}") from exc
    return typed_data_digest(bytes(signable.header), bytes(signable.body))


@functools.lru_cache(maxsize=256)
def type_hash(type_signature: str) -> bytes:
    """``keccak256`` of an EIP-712 type signature such as ``"Reveal(uint256 window,bytes result)"``.

    Example: ``type_hash("EIP712Domain(string name,string version)")``.
    """
    return keccak256(type_signature.encode("utf-8"))


@functools.lru_cache(maxsize=256)
def _field_types(type_signature: str) -> tuple[str, ...]:
    inner = type_signature[type_signature.index("(") + 1 : type_signature.rindex(")")]
    return tuple(member.split(" ")[0] for member in inner.split(",")) if inner else ()


def _static_word(kind: str, value: Any) -> bytes | None:
    """The 32-byte ABI word of a static value, or None to defer to eth_abi."""
    if kind == "bytes32" and isinstance(value, bytes) and len(value) == 32:
        return value
    if kind == "address" and isinstance(value, str) and len(value) == 42:
        try:
            return bytes(12) + bytes.fromhex(value[2:])
        except ValueError:
            return None
    if kind == "bool" and isinstance(value, bool):
        return bytes(31) + bytes([value])
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind in _UINT_BITS and is_int and 0 <= value < 1 << _UINT_BITS[kind]:
        return int(value).to_bytes(32, "big")
    return None


_UINT_BITS = {f"uint{bits}": bits for bits in range(8, 257, 8)}


def struct_hash(type_signature: str, values: Sequence[Any]) -> bytes:
    """EIP-712 ``hashStruct`` of a flat struct (atomic and ``bytes``/``string`` members).

    ``bytes`` and ``string`` members are hashed, others ABI-encoded in place:
    ``keccak256(abi_encode(typeHash, enc(v_1), ..., enc(v_n)))``.

    Example: ``struct_hash("Update(uint256 window,bytes result)", [3, b"ok"])``.
    """
    types = _field_types(type_signature)
    if len(types) != len(values):
        raise InvalidInput(f"{type_signature} has {len(types)} members, got {len(values)} values")
    abi_types = ["bytes32"]
    encoded: list[Any] = [type_hash(type_signature)]
    for kind, value in zip(types, values, strict=True):
        if kind == "bytes":
            abi_types.append("bytes32")
            encoded.append(keccak256(value))
        elif kind == "string":
            abi_types.append("bytes32")
            encoded.append(keccak256(value.encode("utf-8")))
        elif kind.endswith("]") or kind[:1].isupper():
            raise InvalidInput(f"struct_hash handles flat structs only, not member type {kind}")
        else:
            abi_types.append(kind)
            encoded.append(value)
    # all members are static now: encode word by word, falling back to eth_abi for
    # anything unusual (signed ints, short bytesN, addresses to validate)
    words = [_static_word(kind, value) for kind, value in zip(abi_types, encoded, strict=True)]
    if all(w is not None for w in words):
        return keccak256(b"".join(w for w in words if w is not None))
    return keccak256(abi_encode(abi_types, encoded))


def domain_separator(
    name: str,
    version: str,
    chain_id: int | None = None,
    verifying_contract: str | None = None,
) -> bytes:
    """The EIP-712 domain separator for the members given (``None`` members are left out).

    Example: ``domain_separator("DIVERSITY", "1", 31337, agreement_address)``.
    """
    members = ["string name", "string version"]
    values: list[Any] = [name, version]
    if chain_id is not None:
        members.append("uint256 chainId")
        values.append(chain_id)
    if verifying_contract is not None:
        members.append("address verifyingContract")
        values.append(verifying_contract)
    return struct_hash(f"EIP712Domain({','.join(members)})", values)


def sign_typed_data(key: PrivateKey, typed: TypedDataHash) -> Signature:
    """Sign an EIP-712 digest. Safe: the ``0x1901`` prefix separates it from transactions.

    Example: ``sign_typed_data(key, typed_data_digest(dom, struct_hash(...)))``.
    """
    expected = keccak256(b"\x19\x01" + typed.domain_separator + typed.struct_hash)
    if expected != typed.digest:
        raise InvalidInput("TypedDataHash.digest does not match its domain separator and struct")
    return unsafe_sign_hash(key, typed.digest)
