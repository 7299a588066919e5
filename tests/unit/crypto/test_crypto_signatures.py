"""Keys, addresses, EIP-191 and raw-digest signatures; interop with eth-account."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.crypto import (
    SECP256K1_ORDER,
    PrivateKey,
    PublicKey,
    Signature,
    abi_decode,
    abi_encode,
    address_from_public_key,
    checksum_address,
    generate_private_key,
    keccak256,
    recover_hash,
    recover_message,
    sign_message,
    unsafe_sign_hash,
    verify_hash,
)
from pervasive.errors import InvalidInput, InvalidSignature

keys = st.integers(min_value=1, max_value=SECP256K1_ORDER - 1).map(
    lambda n: PrivateKey(n.to_bytes(32, "big"))
)


def test_keccak_known_value() -> None:
    assert (
        keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )


def test_known_address_of_key_one() -> None:
    key = PrivateKey((1).to_bytes(32, "big"))
    assert key.address == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    assert address_from_public_key(key.public_key.to_compressed()) == key.address


def test_private_key_repr_hides_secret() -> None:
    key = generate_private_key()
    assert key.secret.hex() not in repr(key)
    assert key.address in repr(key)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 32, SECP256K1_ORDER.to_bytes(32, "big")])
def test_invalid_private_keys(bad: bytes) -> None:
    with pytest.raises(InvalidInput):
        PrivateKey(bad)


def test_checksum_address_rejects_typos() -> None:
    good = "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"
    assert checksum_address(good.lower()) == good
    with pytest.raises(InvalidInput):
        checksum_address("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD827".replace("CD2a", "Cd2a"))
    with pytest.raises(InvalidInput):
        checksum_address("0x1234")


def test_public_key_not_on_curve() -> None:
    with pytest.raises(InvalidInput):
        PublicKey.from_bytes(b"\x02" + b"\xff" * 32)


@settings(max_examples=40, deadline=None)
@given(key=keys, message=st.binary(max_size=200))
def test_sign_message_matches_eth_account(key: PrivateKey, message: bytes) -> None:
    ours = sign_message(key, message)
    theirs = Account.sign_message(encode_defunct(primitive=message), key.secret)
    assert ours.to_bytes() == bytes(theirs.signature)
    assert recover_message(message, ours) == key.address
    assert Account.recover_message(
        encode_defunct(primitive=message), signature=ours.to_bytes()
    ) == (key.address)


@settings(max_examples=60, deadline=None)
@given(key=keys, digest=st.binary(min_size=32, max_size=32))
def test_sign_recover_round_trip(key: PrivateKey, digest: bytes) -> None:
    sig = unsafe_sign_hash(key, digest)
    assert sig.s <= SECP256K1_ORDER // 2
    assert Signature.from_bytes(sig.to_bytes()) == sig
    assert recover_hash(digest, sig) == key.address
    verify_hash(digest, sig.to_bytes(), key.address)


@settings(max_examples=60, deadline=None)
@given(key=keys, message=st.binary(min_size=1, max_size=64), data=st.data())
def test_tampered_message_never_recovers_signer(
    key: PrivateKey, message: bytes, data: st.DataObject
) -> None:
    sig = sign_message(key, message)
    index = data.draw(st.integers(0, len(message) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(message)
    tampered[index] ^= flip
    try:
        recovered = recover_message(bytes(tampered), sig)
    except InvalidSignature:
        return
    assert recovered != key.address
    with pytest.raises(InvalidSignature):
        verify_hash(keccak256(bytes(tampered)), sig, key.address)


def test_high_s_is_rejected() -> None:
    key = PrivateKey(b"\x05" * 32)
    sig = unsafe_sign_hash(key, b"\x11" * 32)
    high = (
        sig.r.to_bytes(32, "big")
        + (SECP256K1_ORDER - sig.s).to_bytes(32, "big")
        + bytes([sig.v ^ 1])
    )
    with pytest.raises(InvalidSignature):
        recover_hash(b"\x11" * 32, high)


@pytest.mark.parametrize("raw", [b"\x00" * 65, b"\x01" * 64, b"\x01" * 64 + b"\x05"])
def test_malformed_signatures(raw: bytes) -> None:
    with pytest.raises(InvalidSignature):
        recover_hash(b"\x11" * 32, raw)


def test_v_zero_one_accepted() -> None:
    key = PrivateKey(b"\x05" * 32)
    sig = unsafe_sign_hash(key, b"\x22" * 32).to_bytes()
    assert recover_hash(b"\x22" * 32, sig[:64] + bytes([sig[64] - 27])) == key.address


def test_wrong_signer_is_named() -> None:
    key, other = PrivateKey(b"\x05" * 32), PrivateKey(b"\x06" * 32)
    sig = unsafe_sign_hash(key, b"\x33" * 32)
    with pytest.raises(InvalidSignature, match=key.address):
        verify_hash(b"\x33" * 32, sig, other.address)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 2**64 - 1), blob=st.binary(max_size=100), text=st.text(max_size=30))
def test_abi_round_trip_and_strictness(n: int, blob: bytes, text: str) -> None:
    types = ["uint64", "bytes", "string"]
    encoded = abi_encode(types, [n, blob, text])
    assert abi_decode(types, encoded) == (n, blob, text)
    with pytest.raises(InvalidInput):
        abi_decode(types, encoded + b"\x00" * 32)


def test_abi_encode_bad_value() -> None:
    with pytest.raises(InvalidInput):
        abi_encode(["uint64"], [-1])
