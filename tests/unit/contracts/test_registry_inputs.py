"""Validation of registry inputs before anything is sent (no chain needed)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pervasive.crypto import PrivateKey
from pervasive.domain import (
    FieldType,
    SensorField,
    check_account,
    check_endpoint,
    check_fields,
    check_id,
    check_public_key,
    check_sensor_type,
)
from pervasive.errors import InvalidInput

ID_ALPHABET = st.sampled_from("abcXYZ019._:-")


@given(st.text(ID_ALPHABET, min_size=0, max_size=70))
def test_ids_are_1_to_64_safe_characters(text: str) -> None:
    valid = 1 <= len(text) <= 64 and text[0].isalnum()
    if valid:
        assert check_id("sensor", text) == text
    else:
        with pytest.raises(InvalidInput, match="sensor id"):
            check_id("sensor", text)


@pytest.mark.parametrize("bad", ["", "has space", "ünïcode", "-leading", "x" * 65, "a/b"])
def test_bad_ids_say_what_is_allowed(bad: str) -> None:
    with pytest.raises(InvalidInput, match="use 1-64 letters"):
        check_id("user", bad)


@given(st.sampled_from(list(FieldType)))
def test_field_types_round_trip_through_their_code(kind: FieldType) -> None:
    assert FieldType.from_code(kind.code) is kind
    assert FieldType.parse(kind.value.upper()) is kind
    assert SensorField.parse(f"x_1:{kind.value}") == SensorField("x_1", kind)


def test_field_type_codes_match_the_contract_order() -> None:
    names = ["bool", "int64", "uint64", "int256", "uint256", "string", "bytes32", "address"]
    names.append("bytes")
    assert [FieldType.from_code(i).value for i in range(9)] == names
    assert [FieldType(n).code for n in names] == list(range(9))
    with pytest.raises(InvalidInput):
        FieldType.from_code(9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("celsius", "must be written name:type"),
        ("celsius:float", "unknown field type 'float'; choose one of: bool, int64"),
        ("1st:bool", "field name '1st' is invalid"),
        (f"{'n' * 33}:bool", "is invalid"),
    ],
)
def test_malformed_fields_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        SensorField.parse(text)


def test_fields_are_unique_and_at_most_16() -> None:
    twice = (SensorField("a", FieldType.BOOL), SensorField("a", FieldType.INT64))
    with pytest.raises(InvalidInput, match="declared twice"):
        check_fields(twice)
    many = tuple(SensorField(f"f{i}", FieldType.BOOL) for i in range(17))
    with pytest.raises(InvalidInput, match="at most 16"):
        check_fields(many)
    assert check_fields(many[:16]) == many[:16]


@given(st.binary(min_size=32, max_size=32))
def test_real_public_keys_are_accepted_in_every_form(secret: bytes) -> None:
    try:
        key = PrivateKey(secret)
    except InvalidInput:
        return  # zero or above the group order: not a key
    raw = key.public_key.to_bytes()
    assert check_public_key(raw) == raw
    assert check_public_key(b"\x04" + raw) == raw
    assert check_public_key("0x" + raw.hex()) == raw
    compressed = key.public_key.to_compressed()
    assert check_public_key(compressed) == compressed


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("zz", "not hexadecimal"),
        (b"\x02" * 20, "got 20"),
        (b"\x05" + b"\x01" * 32, "not a secp256k1 public key"),
        (b"\x00" * 64, "not a secp256k1 public key"),
    ],
)
def test_malformed_public_keys_are_refused(value: bytes | str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_public_key(value)


def test_accounts_are_checksummed_and_typos_refused() -> None:
    address = PrivateKey(b"\x01" * 32).address
    assert check_account(address.lower()) == address
    typo = address[:2] + address[2:].swapcase()
    if typo not in (address.lower(), address.upper()):
        with pytest.raises(InvalidInput, match="checksum"):
            check_account(typo)
    with pytest.raises(InvalidInput, match="not an Ethereum address"):
        check_account("0x1234")
    with pytest.raises(InvalidInput, match="zero address"):
        check_account("0x" + "00" * 20)


@pytest.mark.parametrize(
    "url", ["mqtts://node.example:8883", "https://10.0.0.1/api", "ws://[::1]:80"]
)
def test_endpoints_with_a_known_scheme_and_host_are_accepted(url: str) -> None:
    assert check_endpoint(url) == url


@pytest.mark.parametrize(
    "url", ["node.example:8883", "ftp://node.example", "mqtt://", "https://" + "a" * 260]
)
def test_other_endpoints_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_endpoint(url)


def test_sensor_types_are_short_labels() -> None:
    assert check_sensor_type("temperature") == "temperature"
    for bad in ("", " lock", "x" * 33, "lock[red]"):
        with pytest.raises(InvalidInput, match="sensor type"):
            check_sensor_type(bad)
