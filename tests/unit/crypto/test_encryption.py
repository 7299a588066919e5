"""ECIES on secp256k1: round trips, and every wrong key, context or byte is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.crypto.encryption import ECIES_OVERHEAD, decrypt_with, encrypt_to
from pervasive.crypto.keys import PrivateKey, generate_private_key
from pervasive.errors import InvalidInput

RECIPIENT = PrivateKey(bytes(31) + b"\x07")
PAYMENT_ID = bytes(range(32))


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=512), context=st.binary(max_size=64))
def test_round_trip(plaintext: bytes, context: bytes) -> None:
    box = encrypt_to(RECIPIENT.public_key, plaintext, context=context)
    assert len(box) == len(plaintext) + ECIES_OVERHEAD
    assert decrypt_with(RECIPIENT, box, context=context) == plaintext


def test_each_encryption_is_fresh() -> None:
    first = encrypt_to(RECIPIENT.public_key, b"index", context=PAYMENT_ID)
    second = encrypt_to(RECIPIENT.public_key, b"index", context=PAYMENT_ID)
    assert first != second


def test_wrong_key_cannot_decrypt() -> None:
    box = encrypt_to(RECIPIENT.public_key, b"index", context=PAYMENT_ID)
    with pytest.raises(InvalidInput, match="wrong key or context"):
        decrypt_with(generate_private_key(), box, context=PAYMENT_ID)


def test_wrong_context_cannot_decrypt() -> None:
    box = encrypt_to(RECIPIENT.public_key, b"index", context=PAYMENT_ID)
    with pytest.raises(InvalidInput, match="wrong key or context"):
        decrypt_with(RECIPIENT, box, context=PAYMENT_ID[::-1])


@settings(max_examples=100, deadline=None)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_tampered_byte_is_refused(position: int, flip: int) -> None:
    box = bytearray(encrypt_to(RECIPIENT.public_key, b"the data index", context=PAYMENT_ID))
    box[position % len(box)] ^= flip
    with pytest.raises(InvalidInput):
        decrypt_with(RECIPIENT, bytes(box), context=PAYMENT_ID)


@pytest.mark.parametrize("size", [0, 1, ECIES_OVERHEAD - 1])
def test_truncated_ciphertext_is_refused(size: int) -> None:
    box = encrypt_to(RECIPIENT.public_key, b"", context=b"")
    with pytest.raises(InvalidInput, match=f"at least {ECIES_OVERHEAD} bytes"):
        decrypt_with(RECIPIENT, box[:size], context=b"")


def test_ciphertext_not_starting_with_a_key_is_refused() -> None:
    box = encrypt_to(RECIPIENT.public_key, b"x", context=b"")
    with pytest.raises(InvalidInput, match="secp256k1 key"):
        decrypt_with(RECIPIENT, b"\x05" + box[1:], context=b"")
