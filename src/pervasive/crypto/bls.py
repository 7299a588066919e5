"""BLS signatures on BLS12-381, key in G2 and signature in G1 (paper 003, section V).

The notary committee of paper 003 signs penalties and releases with one BLS group key
that a contract on the user chain checks through the EIP-2537 precompiles. We use the
IETF ciphersuite ``BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_`` ("minimal signature
size"): public keys are 96-byte compressed G2 points, signatures 48-byte compressed G1
points, messages are hashed to G1 by RFC 9380. Putting the signature in G1 makes an
on-chain verification about 42k gas cheaper than the Ethereum consensus layout (one
``MAP_FP_TO_G1`` instead of ``MAP_FP2_TO_G2``, half the SHA-256 blocks).

Two guards the pairing equation alone does not give:

- points at infinity are refused as keys and signatures: ``e(0, H) * e(-g1, 0) = 1``
  would let an all-zero key "verify" any all-zero signature;
- every decompressed point is subgroup-checked, and a member key is accepted only with a
  proof of possession (:func:`bls_verify_possession`) to stop rogue-key attacks.

Example::

    secret = bls_secret_key(b"\\x01" * 32)
    signature = bls_sign(secret, b"release 1 ether")
    assert bls_verify(bls_public_key(secret), b"release 1 ether", signature)
"""

from __future__ import annotations

import hashlib
import hmac

from py_arkworks_bls12381 import GT, G1Point, G2Point, Scalar

from pervasive.errors import InvalidInput

__all__ = [
    "BLS_CURVE_ORDER",
    "BLS_POP_DST",
    "BLS_SIGNATURE_DST",
    "bls_prove_possession",
    "bls_public_key",
    "bls_secret_key",
    "bls_sign",
    "bls_verify",
    "bls_verify_possession",
    "decode_g1",
    "decode_g2",
    "g1_to_eip2537",
    "g2_to_eip2537",
    "hash_to_g1",
]

BLS_CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
"""The order ``r`` of the BLS12-381 subgroups: secret keys and shares are integers mod r."""

BLS_SIGNATURE_DST = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_"
"""Domain separation tag of the message hash (the contracts hash with the same tag)."""

BLS_POP_DST = b"BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_"
"""Domain separation tag of a proof of possession, so a PoP is never a valid signature."""

_KEYGEN_SALT = b"BLS-SIG-KEYGEN-SALT-"
# The flag byte of a compressed point at infinity (compressed bit + infinity bit).
_INFINITY_FLAG = 0x40
_G1_GENERATOR = G1Point()
_G2_GENERATOR = G2Point()


def bls_secret_key(ikm: bytes) -> int:
    """KeyGen of the IETF BLS draft (HKDF-SHA256, ``L`` = 48): a secret key from >= 32 bytes.

    Deterministic, for tests and demos; a committee's real shares come from the DKG.
    Raises :class:`InvalidInput` if ``ikm`` is shorter than 32 bytes.

    Example: ``bls_secret_key(bytes(32))`` is an integer in ``[1, r-1]``.
    """
    if len(ikm) < 32:
        raise InvalidInput(f"BLS key material must be at least 32 bytes, got {len(ikm)}")
    salt = _KEYGEN_SALT
    secret = 0
    while secret == 0:
        salt = hashlib.sha256(salt).digest()
        prk = hmac.new(salt, ikm + b"\x00", hashlib.sha256).digest()
        # HKDF-Expand with empty key_info and L = 48: two blocks, keep 48 bytes.
        info = (48).to_bytes(2, "big")
        block1 = hmac.new(prk, info + b"\x01", hashlib.sha256).digest()
        block2 = hmac.new(prk, block1 + info + b"\x02", hashlib.sha256).digest()
        secret = int.from_bytes((block1 + block2)[:48], "big") % BLS_CURVE_ORDER
    return secret


def _scalar(secret: int) -> Scalar:
    if not 0 < secret < BLS_CURVE_ORDER:
        raise InvalidInput("a BLS secret key must be an integer in [1, r-1] (r: BLS12-381 order)")
    return Scalar(secret)


def decode_g1(point: bytes) -> G1Point:
    """Decompress a 48-byte G1 point, checking curve and subgroup; infinity is refused.

    Raises :class:`InvalidInput` with what is wrong.

    Example: ``decode_g1(bls_sign(secret, b"m"))``.
    """
    if len(point) != 48:
        raise InvalidInput(f"a compressed G1 point is 48 bytes, got {len(point)}")
    if point[0] & _INFINITY_FLAG:
        raise InvalidInput("the G1 point is the point at infinity, which is never a valid value")
    try:
        decoded = G1Point.from_compressed_bytes(point)
    except ValueError as exc:
        raise InvalidInput(f"not a BLS12-381 G1 point: {point.hex()}") from exc
    if decoded == G1Point.identity():
        raise InvalidInput("the G1 point is the point at infinity, which is never a valid value")
    return decoded


def decode_g2(point: bytes) -> G2Point:
    """Decompress a 96-byte G2 point, checking curve and subgroup; infinity is refused.

    Raises :class:`InvalidInput` with what is wrong.

    Example: ``decode_g2(bls_public_key(secret))``.
    """
    if len(point) != 96:
        raise InvalidInput(f"a compressed G2 point is 96 bytes, got {len(point)}")
    if point[0] & _INFINITY_FLAG:
        raise InvalidInput("the G2 point is the point at infinity, which is never a valid key")
    try:
        decoded = G2Point.from_compressed_bytes(point)
    except ValueError as exc:
        raise InvalidInput(f"not a BLS12-381 G2 point: {point.hex()}") from exc
    if decoded == G2Point.identity():
        raise InvalidInput("the G2 point is the point at infinity, which is never a valid key")
    return decoded


def hash_to_g1(message: bytes, dst: bytes = BLS_SIGNATURE_DST) -> bytes:
    """RFC 9380 ``hash_to_curve`` to G1 (SSWU, random oracle), 48 bytes compressed.

    Example: ``hash_to_g1(b"abc")`` is the point a contract computes on-chain for ``b"abc"``.
    """
    if not 0 < len(dst) <= 255:
        raise InvalidInput(f"a hash-to-curve DST is 1 to 255 bytes, got {len(dst)}")
    return G1Point.hash_to_curve(message, dst).to_compressed_bytes()


def bls_public_key(secret: int) -> bytes:
    """The 96-byte compressed G2 public key ``g2 * secret``.

    Example: ``len(bls_public_key(bls_secret_key(bytes(32)))) == 96``.
    """
    return (_G2_GENERATOR * _scalar(secret)).to_compressed_bytes()


def _sign(secret: int, message: bytes, dst: bytes) -> bytes:
    point = G1Point.hash_to_curve(message, dst) * _scalar(secret)
    return point.to_compressed_bytes()


def _verify(public_key: bytes, message: bytes, signature: bytes, dst: bytes) -> bool:
    # Untrusted callers may hand anything (str, None, bytearray): all of it is "no".
    try:
        key = decode_g2(bytes(public_key))
        sig = decode_g1(bytes(signature))
        hashed = G1Point.hash_to_curve(bytes(message), dst)
    except (InvalidInput, TypeError, ValueError):
        return False
    # e(sig, g2) == e(H(m), pk)  <=>  e(sig, -g2) * e(H(m), pk) == 1
    return GT.pairing_check([sig, hashed], [-_G2_GENERATOR, key])


def bls_sign(secret: int, message: bytes) -> bytes:
    """Sign ``message``: the 48-byte compressed G1 point ``H(message) * secret``.

    A member's partial signature (paper 003 eq. 6) is this with its share as the secret.

    Example: ``bls_sign(secret, b"penalty")``.
    """
    return _sign(secret, message, BLS_SIGNATURE_DST)


def bls_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``message``.

    False (never an exception) for malformed bytes, points outside the subgroup and
    infinity, so a caller can feed it untrusted input.

    Example: ``bls_verify(bls_public_key(s), b"m", bls_sign(s, b"m"))`` is True.
    """
    return _verify(public_key, message, signature, BLS_SIGNATURE_DST)


def bls_prove_possession(secret: int) -> bytes:
    """A proof of possession: the signature of the public key itself under :data:`BLS_POP_DST`.

    Example: ``bls_verify_possession(bls_public_key(s), bls_prove_possession(s))`` is True.
    """
    return _sign(secret, bls_public_key(secret), BLS_POP_DST)


def bls_verify_possession(public_key: bytes, proof: bytes) -> bool:
    """Whether ``proof`` shows that its sender knows the secret of ``public_key``.

    False for malformed input, like :func:`bls_verify`.

    Example: ``bls_verify_possession(pk, bls_prove_possession(s))``.
    """
    return _verify(public_key, public_key, proof, BLS_POP_DST)


def _pad64(element: bytes) -> bytes:
    return bytes(16) + element


def g1_to_eip2537(point: bytes) -> bytes:
    """A 48-byte compressed G1 point in the 128-byte EIP-2537 form ``x || y`` (each padded to 64).

    Raises :class:`InvalidInput` for bytes that are no G1 point (or infinity).

    Example: ``len(g1_to_eip2537(signature)) == 128``.
    """
    xy = decode_g1(point).to_xy_bytes_be()
    return _pad64(xy[:48]) + _pad64(xy[48:])


def g2_to_eip2537(point: bytes) -> bytes:
    """A 96-byte compressed G2 point in the 256-byte EIP-2537 form ``x.c0||x.c1||y.c0||y.c1``.

    Raises :class:`InvalidInput` for bytes that are no G2 point (or infinity).

    Example: ``len(g2_to_eip2537(group_key)) == 256``.
    """
    xy = decode_g2(point).to_xy_bytes_be()
    return b"".join(_pad64(xy[i : i + 48]) for i in range(0, 192, 48))
