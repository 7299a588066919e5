"""BLS (key in G2, signature in G1) against RFC 9380, EIP-2333, the ethereum/bls12-381-tests
deserialisation vectors, EIP-2537 encodings and an independent implementation (blst)."""

from __future__ import annotations

import json
from pathlib import Path

import pyblst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from pervasive.errors import InvalidInput

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
HASH_TO_G1 = json.loads(
    (VECTORS / "hash_to_curve" / "BLS12381G1_XMD_SHA-256_SSWU_RO_.json").read_text()
)
# The generators of G1 and G2 as the Zcash serialisation spec prints them (not arkworks).
G1_GENERATOR = bytes.fromhex(
    "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
)
G2_GENERATOR = bytes.fromhex(
    "93e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d"
    "055d042b7e024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805"
    "bbefd48056c8c121bdb8"
)
SECRETS = st.integers(min_value=1, max_value=BLS_CURVE_ORDER - 1)


def _compress_g1(x: int, y: int) -> bytes:
    """ZCash compressed form: flag 0x80, sign bit 0x20 if y is the larger root."""
    p = int(HASH_TO_G1["field"]["p"], 16)
    flags = 0x80 | (0x20 if y > (p - 1) // 2 else 0)
    raw = bytearray(x.to_bytes(48, "big"))
    raw[0] |= flags
    return bytes(raw)


def _blst_verify(public_key: bytes, message: bytes, signature: bytes, dst: bytes) -> bool:
    """e(sig, g2) == e(H(m), pk) computed by supranational blst, not by arkworks."""
    sig = pyblst.BlstP1Element.uncompress(signature)
    key = pyblst.BlstP2Element.uncompress(public_key)
    hashed = pyblst.BlstP1Element.hash_to_group(message, dst)
    generator = pyblst.BlstP2Element.uncompress(G2_GENERATOR)
    return bool(
        pyblst.final_verify(pyblst.miller_loop(sig, generator), pyblst.miller_loop(hashed, key))
    )


def test_all_rfc9380_vectors_are_read() -> None:
    assert len(HASH_TO_G1["vectors"]) == 5


@pytest.mark.parametrize("case", HASH_TO_G1["vectors"], ids=lambda case: repr(case["msg"][:16]))
def test_hash_to_g1_matches_rfc9380(case: dict[str, object]) -> None:
    point = case["P"]
    assert isinstance(point, dict) and isinstance(case["msg"], str)
    expected = _compress_g1(int(point["x"], 16), int(point["y"], 16))
    assert hash_to_g1(case["msg"].encode(), HASH_TO_G1["dst"].encode()) == expected


def test_keygen_matches_eip2333_master_key() -> None:
    # EIP-2333 test case 0: derive_master_SK is the IETF draft's KeyGen (HKDF_mod_r).
    seed = bytes.fromhex(
        "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92"
        "f2cf141630c7a3c4ab7c81b2f001698e7463b04"
    )
    expected = 6083874454709270928345386274498605044986640685124978867557563392430687146096
    assert bls_secret_key(seed) == expected


def test_keygen_refuses_short_key_material() -> None:
    with pytest.raises(InvalidInput, match="at least 32 bytes"):
        bls_secret_key(b"short")


def _deserialisation_cases(group: str) -> list[tuple[str, bytes, bool]]:
    cases = []
    for path in sorted((VECTORS / "bls" / f"deserialization_{group}").glob("*.json")):
        data = json.loads(path.read_text())
        raw = next(iter(data["input"].values()))
        cases.append((path.stem, bytes.fromhex(raw), bool(data["output"])))
    return cases


@pytest.mark.parametrize(("name", "raw", "valid"), _deserialisation_cases("G1"))
def test_g1_decoding_follows_bls12381_tests(name: str, raw: bytes, valid: bool) -> None:
    # The vectors accept the canonical infinity; this ciphersuite refuses it everywhere.
    if valid and "infinity" not in name:
        assert len(g1_to_eip2537(raw)) == 128
        decode_g1(raw)
    else:
        with pytest.raises(InvalidInput):
            decode_g1(raw)


@pytest.mark.parametrize(("name", "raw", "valid"), _deserialisation_cases("G2"))
def test_g2_decoding_follows_bls12381_tests(name: str, raw: bytes, valid: bool) -> None:
    if valid and "infinity" not in name:
        decode_g2(raw)
    else:
        with pytest.raises(InvalidInput):
            decode_g2(raw)


def test_all_deserialisation_vectors_are_read() -> None:
    assert (len(_deserialisation_cases("G1")), len(_deserialisation_cases("G2"))) == (13, 15)


@settings(max_examples=25, deadline=None)
@given(secret=SECRETS, message=st.binary(max_size=200))
def test_blst_verifies_our_signatures_and_refuses_another_message(
    secret: int, message: bytes
) -> None:
    public_key = bls_public_key(secret)
    signature = bls_sign(secret, message)
    assert bls_verify(public_key, message, signature)
    assert _blst_verify(public_key, message, signature, BLS_SIGNATURE_DST)
    assert not _blst_verify(public_key, message + b"!", signature, BLS_SIGNATURE_DST)
    assert not bls_verify(public_key, message + b"!", signature)


def test_blst_verifies_a_proof_of_possession_which_is_no_signature() -> None:
    secret = bls_secret_key(bytes(range(32)))
    public_key = bls_public_key(secret)
    proof = bls_prove_possession(secret)
    assert bls_verify_possession(public_key, proof)
    assert _blst_verify(public_key, public_key, proof, BLS_POP_DST)
    # Domain separation: the proof is not a signature of the key bytes, nor the reverse.
    assert not bls_verify(public_key, public_key, proof)
    assert not bls_verify_possession(public_key, bls_sign(secret, public_key))
    other = bls_public_key(secret + 1)
    assert not bls_verify_possession(other, proof)


def test_hash_to_g1_agrees_with_blst() -> None:
    for message in (b"", b"abc", bytes(1000)):
        blst = pyblst.BlstP1Element.hash_to_group(message, BLS_SIGNATURE_DST).compress()
        assert hash_to_g1(message) == blst


def test_infinity_key_and_signature_never_verify() -> None:
    # e(0, H) * e(-g1, 0) = 1: the pairing alone would accept this pair for any message.
    infinity_key = b"\xc0" + bytes(95)
    infinity_signature = b"\xc0" + bytes(47)
    assert not bls_verify(infinity_key, b"anything", infinity_signature)
    assert not bls_verify_possession(infinity_key, infinity_signature)
    with pytest.raises(InvalidInput, match="infinity"):
        g2_to_eip2537(infinity_key)


@given(junk=st.binary(max_size=120))
@settings(max_examples=200, deadline=None)
def test_verify_returns_false_on_malformed_bytes(junk: bytes) -> None:
    secret = 7
    assert not bls_verify(junk, b"m", bls_sign(secret, b"m"))
    assert not bls_verify(bls_public_key(secret), b"m", junk)


def test_verify_returns_false_for_wrong_types() -> None:
    secret = 7
    assert not bls_verify("not bytes", b"m", bls_sign(secret, b"m"))  # type: ignore[arg-type]
    assert not bls_verify(bls_public_key(secret), None, bls_sign(secret, b"m"))  # type: ignore[arg-type]


def test_secret_out_of_range_is_refused() -> None:
    for secret in (0, BLS_CURVE_ORDER, -1):
        with pytest.raises(InvalidInput, match=r"\[1, r-1\]"):
            bls_sign(secret, b"m")


def test_eip2537_encodings_of_the_generators() -> None:
    # The generators as the EIP-2537 vectors (tests/vectors/eip2537/mul_G*_bls.json) start.
    g1_vector = json.loads((VECTORS / "eip2537" / "mul_G1_bls.json").read_text())[0]["Input"]
    g2_vector = json.loads((VECTORS / "eip2537" / "mul_G2_bls.json").read_text())[0]["Input"]
    assert g1_to_eip2537(G1_GENERATOR).hex() == g1_vector[:256]
    assert g2_to_eip2537(G2_GENERATOR).hex() == g2_vector[:512]
    assert g2_to_eip2537(bls_public_key(1)) == g2_to_eip2537(G2_GENERATOR)
