"""The web app's forms: exact ETH to wei, and a clear message per wrong field."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pervasive.errors import InvalidInput
from pervasive.web.forms import (
    WEI_PER_ETH,
    eth_to_wei,
    format_eth,
    parse_address,
    parse_new_account,
    parse_sale_order,
    parse_sign_in,
)

WAREHOUSE = "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"
GOOD = {
    "make": "Tesla",
    "model": "alpha",
    "year": "2019",
    "price": "50",
    "serial": "4AA6",
    "warehouse": WAREHOUSE,
}


@pytest.mark.parametrize(
    ("text", "wei"),
    [
        ("1", WEI_PER_ETH),
        ("1.5", 1_500_000_000_000_000_000),
        ("0.000000000000000001", 1),
        ("0.1", 10**17),  # no float rounding: 0.1 is exactly 10**17 wei
        (" 12.340 ", 12_340_000_000_000_000_000),
        ("123456789012345678901234567890.123456789012345678",
         123456789012345678901234567890123456789012345678),
    ],
)  # fmt: skip
def test_eth_to_wei_is_exact(text: str, wei: int) -> None:
    assert eth_to_wei(text) == wei


@pytest.mark.parametrize(
    "text", ["", "1,5", "1e18", "-1", "0x10", "1.", ".5", "1.0000000000000000001", "NaN", "\u0661"]
)
def test_eth_to_wei_refuses_what_is_not_a_plain_decimal(text: str) -> None:
    with pytest.raises(InvalidInput, match="write the price in ETH"):
        eth_to_wei(text)


@given(st.integers(min_value=0, max_value=10**40))
def test_format_eth_and_eth_to_wei_round_trip(wei: int) -> None:
    text = format_eth(wei)
    assert eth_to_wei(text) == wei
    with localcontext(prec=100):
        assert Decimal(text) * WEI_PER_ETH == wei


def test_a_valid_sale_order_is_typed() -> None:
    parsed = parse_sale_order({**GOOD, "price": "1.25", "warehouse": WAREHOUSE.lower()})
    assert parsed.ok and parsed.value is not None
    assert parsed.value.price == 1_250_000_000_000_000_000
    assert parsed.value.year == 2019
    assert parsed.value.warehouse == WAREHOUSE  # checksummed


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("make", "", "Enter the make."),
        ("model", "x" * 65, "too long"),
        ("make", "é" * 33, "too long"),  # 66 UTF-8 bytes: the contract's String[64] is bytes
        ("year", "19", "four digits"),
        ("year", "\uff12\uff10\uff11\uff19", "four digits"),  # fullwidth 2019
        ("year", "1800", "between 1886"),
        ("year", "twenty", "four digits"),
        ("price", "", "Enter the price"),
        ("price", "0", "more than 0 ETH"),
        ("price", "1,5", "with digits and at most one dot"),
        ("price", "79228162514.264337593543950336", "at most 79228162514.264337593543950335 ETH"),
        ("serial", "", "Enter the serial number."),
        ("serial", "4A A6", "letters, digits"),
        ("warehouse", "", "Enter the warehouse account"),
        ("warehouse", "0x1234", "40 hexadecimal digits"),
        ("warehouse", WAREHOUSE.replace("CD2a", "Cd2a"), "checksum"),  # one letter's case wrong
        ("warehouse", "0x" + "0" * 40, "zero address"),
    ],
)  # fmt: skip
def test_each_wrong_field_gets_its_message_and_the_form_is_refilled(
    field: str, value: str, message: str
) -> None:
    parsed = parse_sale_order({**GOOD, field: value})
    assert not parsed.ok
    assert list(parsed.errors) == [field]
    assert message in parsed.errors[field]
    assert parsed.errors[field][0].isupper() and parsed.errors[field].endswith(".")
    assert parsed.submitted == {**GOOD, field: value}


def test_every_field_is_checked_at_once() -> None:
    parsed = parse_sale_order({})
    assert set(parsed.errors) == set(GOOD)


def test_parse_address_accepts_without_0x_and_refuses_garbage() -> None:
    assert parse_address(WAREHOUSE[2:].lower()) == WAREHOUSE
    with pytest.raises(InvalidInput, match="not hexadecimal"):
        parse_address("0x" + "zz" * 20)


def test_sign_in_form_never_refills_the_password() -> None:
    parsed = parse_sign_in({"account": "alice", "password": "secret-1"})
    assert parsed.value is not None and parsed.value.password == "secret-1"
    assert "secret-1" not in repr(parsed)
    assert parsed.submitted == {"account": "alice"}
    refused = parse_sign_in({"account": "al ice", "password": ""})
    assert set(refused.errors) == {"account", "password"}


def test_new_account_form() -> None:
    good = parse_new_account(
        {"account": "bob", "password": "12345678", "confirm": "12345678"}, set()
    )
    assert good.value is not None and good.value.account == "bob"
    taken = parse_new_account(
        {"account": "bob", "password": "12345678", "confirm": "12345678"}, {"bob"}
    )
    assert "exists already" in taken.errors["account"]
    short = parse_new_account({"account": "bob", "password": "1234", "confirm": "1234"}, set())
    assert "at least 8" in short.errors["password"]
    differ = parse_new_account(
        {"account": "bob", "password": "12345678", "confirm": "12345679"}, set()
    )
    assert "differ" in differ.errors["confirm"]
    assert "password" not in differ.submitted and "confirm" not in differ.submitted
