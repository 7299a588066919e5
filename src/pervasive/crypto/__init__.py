"""Pure cryptography: keccak, ABI encoding, secp256k1 keys, Ethereum signatures, EIP-712.

No I/O and no knowledge of the chain. See ``README.md`` in this folder.

Example::

    from pervasive.crypto import generate_private_key, sign_message, recover_message
    key = generate_private_key()
    assert recover_message("hello", sign_message(key, "hello")) == key.address
"""

from pervasive.crypto.hashing import abi_decode, abi_encode, keccak256
from pervasive.crypto.keys import (
    SECP256K1_ORDER,
    PrivateKey,
    PublicKey,
    address_from_public_key,
    checksum_address,
    generate_private_key,
)
from pervasive.crypto.signatures import (
    Signature,
    eip191_hash,
    recover_hash,
    recover_message,
    sign_message,
    unsafe_sign_hash,
    verify_hash,
)
from pervasive.crypto.typed_data import (
    TypedDataHash,
    domain_separator,
    hash_typed_data,
    sign_typed_data,
    struct_hash,
    type_hash,
    typed_data_digest,
)

__all__ = [
    "SECP256K1_ORDER",
    "PrivateKey",
    "PublicKey",
    "Signature",
    "TypedDataHash",
    "abi_decode",
    "abi_encode",
    "address_from_public_key",
    "checksum_address",
    "domain_separator",
    "eip191_hash",
    "generate_private_key",
    "hash_typed_data",
    "keccak256",
    "recover_hash",
    "recover_message",
    "sign_message",
    "sign_typed_data",
    "struct_hash",
    "type_hash",
    "typed_data_digest",
    "unsafe_sign_hash",
    "verify_hash",
]
