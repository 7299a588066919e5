"""The buyer-signed barcode receipt of paper 004, section 4.4: signing, barcode text, refusals.

The digest is checked against the full EIP-712 document a browser wallet signs
(``eth_signTypedData_v4``) and against eth-account's independent implementation; the
barcode text round-trips, and any single changed character is refused by ``decode`` or
``verify``.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.crypto import SECP256K1_ORDER, PrivateKey, hash_typed_data
from pervasive.domain import InvalidReceipt, SaleReceipt
from pervasive.errors import InvalidInput

BUYER = PrivateKey(bytes.fromhex("11" * 32))
OTHER = PrivateKey(bytes.fromhex("22" * 32))
ORDER = "0x3dD96E8772aAbBcCdDeEfF00112233445566778a".lower()
CHAIN = 31337
QR_ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")

keys = st.integers(1, SECP256K1_ORDER - 1).map(lambda n: PrivateKey(n.to_bytes(32, "big")))
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
chain_ids = st.one_of(st.integers(1, 2**64), st.integers(1, 2**256 - 1))


def _receipt() -> SaleReceipt:
    return SaleReceipt.sign(BUYER, CHAIN, ORDER, BUYER.address)


def test_the_signed_digest_is_the_wallet_documents() -> None:
    document = SaleReceipt.typed_data(CHAIN, ORDER, BUYER.address)
    domain = {"name": "pervasive sale receipt", "version": "1", "chainId": CHAIN}
    assert document["domain"] == domain
    assert document["primaryType"] == "Receipt"
    assert hash_typed_data(document) == SaleReceipt.digest(CHAIN, ORDER, BUYER.address)


@settings(max_examples=25)
@given(keys, addresses, chain_ids)
def test_a_wallet_signature_makes_the_same_receipt(
    key: PrivateKey, order: str, chain_id: int
) -> None:
    # eth-account stands in for the browser wallet: an independent EIP-712 implementation
    signable = encode_typed_data(full_message=SaleReceipt.typed_data(chain_id, order, key.address))
    signed = Account.sign_message(signable, key.secret)
    from_wallet = SaleReceipt.from_signature(chain_id, order, key.address, signed.signature.hex())
    from_wallet.verify()
    assert from_wallet == SaleReceipt.sign(key, chain_id, order, key.address)


def test_a_signature_with_v_0_or_1_is_accepted_as_27_or_28() -> None:
    receipt = _receipt()
    raw = receipt.signature[:64] + bytes([receipt.signature[64] - 27])
    again = SaleReceipt.from_signature(CHAIN, ORDER, BUYER.address, "0x" + raw.hex())
    assert again == receipt
    again.verify()


@settings(max_examples=50)
@given(keys, addresses, chain_ids)
def test_encode_decode_round_trip(key: PrivateKey, order: str, chain_id: int) -> None:
    receipt = SaleReceipt.sign(key, chain_id, order, key.address)
    text = receipt.encode()
    assert set(text) <= QR_ALPHANUMERIC
    prefix, chain, order_hex, buyer_hex, signature_hex = text.split(":")
    assert (prefix, int(chain)) == ("PVR1", chain_id)
    assert (len(order_hex), len(buyer_hex), len(signature_hex)) == (40, 40, 130)
    decoded = SaleReceipt.decode(text)
    assert decoded == receipt
    decoded.verify(chain_id=chain_id)


_ENCODED = _receipt().encode()
_REPLACEMENTS = "0123456789ABCDEFabcdefPVRZ:x "


@settings(max_examples=400)
@given(st.integers(0, len(_ENCODED) - 1), st.sampled_from(_REPLACEMENTS))
def test_any_single_changed_character_is_refused(position: int, char: str) -> None:
    if _ENCODED[position] == char:
        return
    changed = _ENCODED[:position] + char + _ENCODED[position + 1 :]
    with pytest.raises(InvalidReceipt):
        SaleReceipt.decode(changed).verify()


def test_every_single_hex_digit_change_is_refused() -> None:
    # exhaustive over the fields a forger would touch: order, buyer, signature
    start = _ENCODED.index(":", 5) + 1
    refused = 0
    for position in range(start, len(_ENCODED)):
        if _ENCODED[position] == ":":
            continue
        for char in "0123456789ABCDEF":
            if char == _ENCODED[position]:
                continue
            changed = _ENCODED[:position] + char + _ENCODED[position + 1 :]
            with pytest.raises(InvalidReceipt):
                SaleReceipt.decode(changed).verify()
            refused += 1
    assert refused == 15 * (40 + 40 + 130)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not a sale receipt"),
        ("HELLO WORLD", "not a sale receipt"),
        ("PVR2:1:AA:BB:CC", "format '2' is not supported"),
        ("PVR1:1:2:3", "has 4"),
        ("PVR1:1:2:3:4:5", "has 6"),
        ("PVR1:x:{o}:{b}:{s}", "chain id 'x' is not a number"),
        ("PVR1:0:{o}:{b}:{s}", "chain id '0'"),
        ("PVR1:031337:{o}:{b}:{s}", "no leading 0"),
        ("PVR1:-1:{o}:{b}:{s}", "is not a number"),
        ("PVR1:1:{o}AB:{b}:{s}", "order address must be 40 hex digits"),
        ("PVR1:1:{o_lower}:{b}:{s}", "order address must be 40 hex digits"),
        ("PVR1:1:{o}:{b_short}:{s}", "buyer address must be 40 hex digits"),
        ("PVR1:1:{o}:{b}:{s}00", "signature must be 130 hex digits"),
        ("PVR1:1:{o}:{b}:{s_v}", "v=29"),
        ("PVR1:1:{o}:{b}:{s_high}", "high"),
    ],
)
def test_malformed_barcodes_say_what_is_wrong(text: str, reason: str) -> None:
    good = _receipt()
    sig = good.signature.hex().upper()
    high_s = (SECP256K1_ORDER - 1).to_bytes(32, "big").hex().upper()
    filled = text.format(
        o=good.order[2:].upper(),
        o_lower=good.order[2:].lower(),
        b=good.buyer[2:].upper(),
        b_short=good.buyer[2:12].upper(),
        s=sig,
        s_v=sig[:128] + "1D",
        s_high=sig[:64] + high_s + sig[128:],
    )
    with pytest.raises(InvalidReceipt, match=reason):
        SaleReceipt.decode(filled)


def test_a_receipt_signed_by_someone_else_is_refused() -> None:
    forged = SaleReceipt.sign(OTHER, CHAIN, ORDER, OTHER.address)
    claimed = SaleReceipt(CHAIN, forged.order, BUYER.address, forged.signature)
    with pytest.raises(InvalidReceipt, match="not signed by its buyer") as refused:
        claimed.verify()
    assert refused.value.kind == "not the buyer"
    with pytest.raises(InvalidReceipt, match="only the buyer"):
        SaleReceipt.sign(OTHER, CHAIN, ORDER, BUYER.address)


def test_a_receipt_for_another_chain_or_order_is_refused() -> None:
    receipt = _receipt()
    with pytest.raises(InvalidReceipt, match="for chain 31337") as refused:
        receipt.verify(chain_id=1)
    assert refused.value.kind == "wrong chain"
    moved = SaleReceipt(CHAIN, BUYER.address, receipt.buyer, receipt.signature)
    with pytest.raises(InvalidReceipt, match="not signed by its buyer"):
        moved.verify()
    elsewhere = SaleReceipt(1, receipt.order, receipt.buyer, receipt.signature)
    with pytest.raises(InvalidReceipt, match="not signed by its buyer"):
        elsewhere.verify()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((0, ORDER, BUYER.address, "00" * 65), "chain id is a positive integer"),
        ((True, ORDER, BUYER.address, "00" * 65), "chain id is a positive integer"),
        ((CHAIN, "0x1234", BUYER.address, "00" * 65), "order is not an address"),
        ((CHAIN, ORDER, "bob", "00" * 65), "buyer is not an address"),
        ((CHAIN, ORDER, BUYER.address, "zz"), "not hexadecimal"),
        ((CHAIN, ORDER, BUYER.address, b"\x01" * 64), "65 bytes"),
        ((CHAIN, ORDER, BUYER.address, b"\x00" * 65), "malformed"),
    ],
)
def test_from_signature_refuses_malformed_parts(args: tuple[object, ...], reason: str) -> None:
    with pytest.raises(InvalidReceipt, match=reason):
        SaleReceipt.from_signature(*args)  # type: ignore[arg-type]


def test_an_invalid_receipt_is_an_invalid_input() -> None:
    assert issubclass(InvalidReceipt, InvalidInput)
    assert issubclass(InvalidReceipt, ValueError)


def test_surrounding_whitespace_from_a_scanner_is_ignored() -> None:
    receipt = _receipt()
    assert SaleReceipt.decode(receipt.encode() + "\r\n") == receipt
