"""The entities of the registry (paper 002, section 3) and the checks on their inputs.

A user is ``(id, account)``; a sensor is its declaration
``d_s = {PU_s, c_s, type_1 x_1, ..., type_h x_h}``; an intermediate node is
``(id, account, public key, endpoint)``. Every entity also carries its ``owner`` (the
account that registered it) and whether it is still ``active``.

The ``check_*`` functions validate what a caller gives before anything is sent, and
raise :class:`~pervasive.errors.InvalidInput` saying what to fix. The contract checks
the same rules again on-chain (see ``vyper/registry.vy``).

Example::

    field = SensorField.parse("celsius:int64")
    field.type.code   # 1
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from pervasive.crypto import PublicKey, checksum_address
from pervasive.errors import InvalidInput

__all__ = [
    "ENDPOINT_SCHEMES",
    "MAX_FIELDS",
    "FieldType",
    "IntermediateNode",
    "Sensor",
    "SensorField",
    "User",
    "check_account",
    "check_endpoint",
    "check_fields",
    "check_id",
    "check_public_key",
    "check_sensor_type",
]

MAX_FIELDS = 16
MAX_ENDPOINT = 256
ENDPOINT_SCHEMES = ("http", "https", "mqtt", "mqtts", "ws", "wss", "tcp", "tls")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
_SENSOR_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,31}")


class FieldType(StrEnum):
    """The closed set of types a sensor field may declare; ``code`` is the on-chain value."""

    BOOL = "bool"
    INT64 = "int64"
    UINT64 = "uint64"
    INT256 = "int256"
    UINT256 = "uint256"
    STRING = "string"
    BYTES32 = "bytes32"
    ADDRESS = "address"

    @property
    def code(self) -> int:
        """The index stored on-chain (declaration order). Example: ``FieldType.BOOL.code == 0``."""
        return list(FieldType).index(self)

    @classmethod
    def from_code(cls, code: int) -> FieldType:
        """The type stored on-chain as ``code``."""
        members = list(cls)
        if not 0 <= code < len(members):
            raise InvalidInput(f"field type code {code} is unknown")
        return members[code]

    @classmethod
    def parse(cls, name: str) -> FieldType:
        """The type named ``name``; :class:`InvalidInput` lists the choices otherwise.

        Example: ``FieldType.parse("uint64") is FieldType.UINT64``.
        """
        try:
            return cls(name.strip().lower())
        except ValueError:
            choices = ", ".join(member.value for member in cls)
            raise InvalidInput(f"unknown field type {name!r}; choose one of: {choices}") from None


@dataclass(frozen=True)
class SensorField:
    """A declared variable ``type x`` of a sensor."""

    name: str
    type: FieldType

    @classmethod
    def parse(cls, text: str) -> SensorField:
        """Parse ``name:type``, e.g. ``"celsius:int64"``.

        Example: ``SensorField.parse("locked:bool") == SensorField("locked", FieldType.BOOL)``.
        """
        name, sep, kind = text.partition(":")
        if not sep:
            raise InvalidInput(f"field {text!r} must be written name:type, e.g. celsius:int64")
        return cls(check_field_name(name.strip()), FieldType.parse(kind))


@dataclass(frozen=True)
class User:
    """A user: an id and the account that acts for it."""

    id: str
    account: str
    owner: str
    active: bool


@dataclass(frozen=True)
class Sensor:
    """A sensor declaration ``{PU_s, c_s, type_1 x_1, ...}``, its owner and status."""

    id: str
    public_key: bytes
    sensor_type: str
    fields: tuple[SensorField, ...]
    owner: str
    active: bool


@dataclass(frozen=True)
class IntermediateNode:
    """An intermediate node: its account, signing key and where to reach it."""

    id: str
    account: str
    public_key: bytes
    endpoint: str
    owner: str
    active: bool


def check_id(kind: str, value: str) -> str:
    """``value`` if it is a valid id for a ``kind`` entity (1-64 of ``A-Za-z0-9._:-``).

    Example: ``check_id("sensor", "lock-1") == "lock-1"``.
    """
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidInput(
            f"{kind} id {value!r} is invalid: use 1-64 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit"
        )
    return value


def check_account(value: str, *, what: str = "account") -> str:
    """The checksummed form of address ``value``; refuses the zero address and typos.

    Example: ``check_account("0x" + "ab" * 20)``.
    """
    try:
        address = checksum_address(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{what} {value!r} is not an Ethereum address: {exc}") from None
    if int(address, 16) == 0:
        raise InvalidInput(f"{what} may not be the zero address")
    return address


def check_public_key(value: bytes | str) -> bytes:
    """A secp256k1 public key as stored on-chain: 64 bytes ``x||y`` or 33 bytes compressed.

    Accepts bytes or hex; a 65-byte ``04||x||y`` key is stored as its 64 bytes. The
    point must lie on the curve.

    Example: ``len(check_public_key(PrivateKey.from_hex("11" * 32).public_key.to_bytes())) == 64``.
    """
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value.strip().removeprefix("0x"))
        except ValueError:
            raise InvalidInput(f"public key {value!r} is not hexadecimal") from None
    else:
        raw = bytes(value)
    if len(raw) == 65 and raw[0] == 4:
        raw = raw[1:]
    if len(raw) not in (33, 64):
        raise InvalidInput(
            f"a public key is 64 bytes (x||y), 65 (04||x||y) or 33 (compressed); got {len(raw)}"
        )
    PublicKey.from_bytes(raw)  # raises InvalidInput when not on the curve
    return raw


def check_field_name(name: str) -> str:
    """``name`` if it is a valid field name (an identifier of at most 32 characters)."""
    if not _FIELD_NAME.fullmatch(name):
        raise InvalidInput(
            f"field name {name!r} is invalid: use letters, digits and '_', at most 32, "
            "not starting with a digit"
        )
    return name


def check_fields(fields: tuple[SensorField, ...] | list[SensorField]) -> tuple[SensorField, ...]:
    """The fields, if there are at most 16 with distinct valid names and known types."""
    fields = tuple(fields)
    if len(fields) > MAX_FIELDS:
        raise InvalidInput(f"a sensor declares at most {MAX_FIELDS} fields, got {len(fields)}")
    seen: set[str] = set()
    for field in fields:
        check_field_name(field.name)
        FieldType.parse(str(field.type))
        if field.name in seen:
            raise InvalidInput(f"field {field.name!r} is declared twice; field names are unique")
        seen.add(field.name)
    return fields


def check_sensor_type(value: str) -> str:
    """``value`` if it is a valid sensor type c_s (1-32 characters, e.g. ``temperature``)."""
    if not _SENSOR_TYPE.fullmatch(value):
        raise InvalidInput(
            f"sensor type {value!r} is invalid: 1-32 letters, digits, spaces or ._:/-"
        )
    return value


def check_endpoint(value: str) -> str:
    """``value`` if it is a URL an intermediate node can be reached at.

    Example: ``check_endpoint("mqtts://node1.example:8883")``.
    """
    parts = urlsplit(value)
    if parts.scheme not in ENDPOINT_SCHEMES or not parts.hostname:
        schemes = ", ".join(ENDPOINT_SCHEMES)
        raise InvalidInput(
            f"endpoint {value!r} is not a URL with a host and one of the schemes: {schemes}"
        )
    if len(value.encode()) > MAX_ENDPOINT:
        raise InvalidInput(f"an endpoint is at most {MAX_ENDPOINT} bytes")
    return value
