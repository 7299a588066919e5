"""The web app's forms: parsing and validation with a clear message per field.

Each ``parse_*`` function takes the submitted fields and returns a :class:`Parsed`:
the typed value when every field is valid, otherwise a message per wrong field
(shown next to it) and the submitted text (to fill the form again; never a
password). Prices are written in ETH as decimals and converted to wei exactly
(:func:`eth_to_wei`, no floating point).

Example::

    parsed = parse_sale_order({"make": "Tesla", "model": "3", "year": "2019",
                               "price": "1.5", "serial": "4AA6", "warehouse": "0x..."})
    parsed.value.price     # 1500000000000000000 (wei) when valid
    parsed.errors          # {"warehouse": "..."} otherwise
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pervasive.contracts.sale_order import MAX_PRICE, MAX_TEXT
from pervasive.crypto import checksum_address
from pervasive.errors import InvalidInput

__all__ = [
    "FIRST_CAR_YEAR",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "WEI_PER_ETH",
    "NewAccount",
    "Parsed",
    "SaleOrderDraft",
    "SignIn",
    "eth_to_wei",
    "format_eth",
    "parse_address",
    "parse_new_account",
    "parse_sale_order",
    "parse_sign_in",
]

WEI_PER_ETH = 10**18
"""Wei in one ether."""
MIN_PASSWORD = 8
"""Fewest characters of a new account's password."""
MAX_PASSWORD = 1024
"""Most characters of a password (scrypt takes any length; a bound keeps requests small)."""
FIRST_CAR_YEAR = 1886
"""The earliest model year accepted (the first car)."""

_PRICE = re.compile(r"(?P<whole>[0-9]{1,30})(?:\.(?P<fraction>[0-9]{1,18}))?")
_YEAR = re.compile(r"[0-9]{4}")
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
_ACCOUNT = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ZERO_ADDRESS = "0x" + "0" * 40

T = TypeVar("T")


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """The outcome of parsing a form: ``value`` when valid, else ``errors`` by field."""

    value: T | None
    errors: dict[str, str] = field(default_factory=dict)
    submitted: dict[str, str] = field(default_factory=dict)
    """What was typed (passwords left out), to fill the form again."""

    @property
    def ok(self) -> bool:
        """Every field is valid."""
        return self.value is not None


@dataclass(frozen=True)
class SaleOrderDraft:
    """A seller's new sale order (paper 004, Table 1 constructor), validated."""

    make: str
    model: str
    year: int
    price: int
    """In wei."""
    serial: str
    warehouse: str
    """The checksummed account of the warehouse that releases the item."""


@dataclass(frozen=True)
class SignIn:
    """A keystore account name and its password."""

    account: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class NewAccount:
    """A new keystore account: its name and password (typed twice)."""

    account: str
    password: str = field(repr=False)


def eth_to_wei(text: str) -> int:
    """The exact wei of a decimal ETH amount; :class:`InvalidInput` says how to write it.

    Example: ``eth_to_wei("1.5") == 1_500_000_000_000_000_000``.
    """
    match = _PRICE.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(
            "write the price in ETH with digits and at most one dot, e.g. 1.25 "
            "(at most 18 digits after the dot)"
        )
    fraction = (match["fraction"] or "").ljust(18, "0")
    return int(match["whole"]) * WEI_PER_ETH + int(fraction)


def format_eth(wei: int) -> str:
    """``wei`` as an exact decimal ETH amount, without trailing zeros.

    Example: ``format_eth(1_500_000_000_000_000_000) == "1.5"``.
    """
    whole, fraction = divmod(wei, WEI_PER_ETH)
    digits = f"{fraction:018d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def parse_address(text: str, what: str = "address") -> str:
    """A checksummed, non-zero address; :class:`InvalidInput` says what is wrong.

    Example: ``parse_address(" 0xcd2a3d9f938e13cd947ec05abc7fe734df8dd826 ")``.
    """
    text = text.strip()
    if not text:
        raise InvalidInput(f"enter the {what}: 0x followed by 40 hexadecimal digits")
    try:
        address = checksum_address(text if text.lower().startswith("0x") else "0x" + text)
    except InvalidInput as exc:
        raise InvalidInput(
            f"the {what} must be 0x followed by 40 hexadecimal digits ({exc})"
        ) from exc
    if address == _ZERO_ADDRESS:
        raise InvalidInput(f"the {what} cannot be the zero address")
    return address


def _text(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "")
    return value if isinstance(value, str) else ""


def _plain_text(value: str, label: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise InvalidInput(f"enter the {label}")
    if len(value.encode("utf-8")) > MAX_TEXT:
        raise InvalidInput(
            f"the {label} is too long: use at most {MAX_TEXT} characters (fewer with accents)"
        )
    if not value.isprintable():
        raise InvalidInput(f"the {label} holds characters that cannot be printed")
    return value


def _year(text: str) -> int:
    text = text.strip()
    latest = datetime.datetime.now(tz=datetime.UTC).year + 1
    if not _YEAR.fullmatch(text):
        raise InvalidInput(f"enter the year as four digits, e.g. {latest - 1}")
    year = int(text)
    if not FIRST_CAR_YEAR <= year <= latest:
        raise InvalidInput(f"the year must be between {FIRST_CAR_YEAR} and {latest}")
    return year


def _price(text: str) -> int:
    if not text.strip():
        raise InvalidInput("enter the price in ETH, e.g. 1.25")
    wei = eth_to_wei(text)
    if wei == 0:
        raise InvalidInput("the price must be more than 0 ETH")
    if wei > MAX_PRICE:
        raise InvalidInput(f"the price can be at most {format_eth(MAX_PRICE)} ETH")
    return wei


def _serial(text: str) -> str:
    text = text.strip()
    if not text:
        raise InvalidInput("enter the serial number")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"the serial number is too long: use at most {MAX_TEXT} characters")
    if not _SERIAL.fullmatch(text):
        raise InvalidInput(
            "the serial number may hold letters, digits, '.', '_', '/' and '-' "
            "and starts with a letter or digit"
        )
    return text


def parse_sale_order(fields: Mapping[str, str]) -> Parsed[SaleOrderDraft]:
    """Validate the seller's form: make, model, year, price (ETH), serial, warehouse.

    Example: ``parse_sale_order(form).errors.get("price")``.
    """
    names = ("make", "model", "year", "price", "serial", "warehouse")
    submitted = {name: _text(fields, name) for name in names}
    checks: dict[str, Callable[[str], object]] = {
        "make": lambda text: _plain_text(text, "make"),
        "model": lambda text: _plain_text(text, "model"),
        "year": _year,
        "price": _price,
        "serial": _serial,
        "warehouse": lambda text: parse_address(text, "warehouse account"),
    }
    values: dict[str, object] = {}
    errors: dict[str, str] = {}
    for name, check in checks.items():
        try:
            values[name] = check(submitted[name])
        except InvalidInput as exc:
            errors[name] = _sentence(str(exc))
    if errors:
        return Parsed(None, errors, submitted)
    draft = SaleOrderDraft(**values)  # type: ignore[arg-type]
    return Parsed(draft, {}, submitted)


def parse_sign_in(fields: Mapping[str, str]) -> Parsed[SignIn]:
    """Validate the sign-in form (account name and password).

    Example: ``parse_sign_in({"account": "alice", "password": "..."}).ok``.
    """
    account = _text(fields, "account").strip()
    password = _text(fields, "password")
    errors: dict[str, str] = {}
    if not _ACCOUNT.fullmatch(account):
        errors["account"] = "Enter your account name: letters, digits, '-', '_' or '.'."
    if not password:
        errors["password"] = "Enter the account's password."  # noqa: S105 - a message
    elif len(password) > MAX_PASSWORD:
        errors["password"] = f"A password has at most {MAX_PASSWORD} characters."
    if errors:
        return Parsed(None, errors, {"account": account})
    return Parsed(SignIn(account, password), {}, {"account": account})


def parse_new_account(fields: Mapping[str, str], existing: set[str]) -> Parsed[NewAccount]:
    """Validate the new-account form: a free name, a password typed twice alike.

    Example: ``parse_new_account(form, set(keystore.names())).errors``.
    """
    account = _text(fields, "account").strip()
    password = _text(fields, "password")
    confirm = _text(fields, "confirm")
    errors: dict[str, str] = {}
    if not _ACCOUNT.fullmatch(account):
        errors["account"] = "Choose a name of 1 to 64 letters, digits, '-', '_' or '.' (no spaces)."
    elif account in existing:
        errors["account"] = f"An account named {account!r} exists already: choose another name."
    if len(password) < MIN_PASSWORD:
        errors["password"] = f"Choose a password of at least {MIN_PASSWORD} characters."
    elif len(password) > MAX_PASSWORD:
        errors["password"] = f"A password has at most {MAX_PASSWORD} characters."
    elif confirm != password:
        errors["confirm"] = "The two passwords differ: type the same password twice."
    if errors:
        return Parsed(None, errors, {"account": account})
    return Parsed(NewAccount(account, password), {}, {"account": account})


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."
