"""Pure cryptography: keccak, ABI encoding, secp256k1 keys, Ethereum signatures, EIP-712,
BLS12-381 (threshold) signatures and ECIES.

No I/O and no knowledge of the chain. See ``README.md`` in this folder.

Example::

    from pervasive.crypto import generate_private_key, sign_message, recover_message
    key = generate_private_key()
    assert recover_message("hello", sign_message(key, "hello")) == key.address
"""

from pervasive.crypto.bls import (
    BLS_CURVE_ORDER,
    BLS_POP_DST,
    BLS_SIGNATURE_DST,
    bls_prove_possession,
    bls_public_key,
    bls_secret_key,
    bls_sign,
    bls_verify,
    bls_verify_possession,
    decode_g1,
    decode_g2,
    g1_to_eip2537,
    g2_to_eip2537,
    hash_to_g1,
)
from pervasive.crypto.encryption import ECIES_OVERHEAD, decrypt_with, encrypt_to
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
from pervasive.crypto.threshold import (
    Polynomial,
    combine_shares,
    combine_signatures,
    evaluate_polynomial,
    group_public_key,
    lagrange_at_zero,
    public_share,
    verify_public_shares,
    verify_share,
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
    "BLS_CURVE_ORDER",
    "BLS_POP_DST",
    "BLS_SIGNATURE_DST",
    "ECIES_OVERHEAD",
    "SECP256K1_ORDER",
    "Polynomial",
    "PrivateKey",
    "PublicKey",
    "Signature",
    "TypedDataHash",
    "abi_decode",
    "abi_encode",
    "address_from_public_key",
    "bls_prove_possession",
    "bls_public_key",
    "bls_secret_key",
    "bls_sign",
    "bls_verify",
    "bls_verify_possession",
    "checksum_address",
    "combine_shares",
    "combine_signatures",
    "decode_g1",
    "decode_g2",
    "decrypt_with",
    "domain_separator",
    "eip191_hash",
    "encrypt_to",
    "evaluate_polynomial",
    "g1_to_eip2537",
    "g2_to_eip2537",
    "generate_private_key",
    "group_public_key",
    "hash_to_g1",
    "hash_typed_data",
    "keccak256",
    "lagrange_at_zero",
    "public_share",
    "recover_hash",
    "recover_message",
    "sign_message",
    "sign_typed_data",
    "struct_hash",
    "type_hash",
    "typed_data_digest",
    "unsafe_sign_hash",
    "verify_hash",
    "verify_public_shares",
    "verify_share",
]
