"""The entities of the registry (paper 002, section 3) and the checks on their inputs.

A user is ``(id, account)``; a sensor is its declaration
``d_s = {PU_s, c_s, type_1 x_1, ..., type_h x_h}``; an intermediate node is
``(id, account, public key, endpoint)``. Every entity also carries its ``owner`` (the
account that registered it) and whether it is still ``active``.

The ``check_*`` functions validate what a caller gives before anything is sent, and
raise :class:`~pervasive.errors.InvalidInput` saying what to fix. The contract checks
the same rules again on-chain (see ``vyper/registry.vy``).

Example::

    check_id("sensor", "lock-1")
    check_endpoint("mqtts://node1.example:8883")
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from pervasive.crypto import PublicKey, checksum_address
from pervasive.domain.sensor_fields import MAX_FIELDS, FieldType, SensorField, check_field_name
from pervasive.errors import InvalidInput

__all__ = [
    "ENDPOINT_SCHEMES",
    "MAX_ENDPOINT",
    "IntermediateNode",
    "Sensor",
    "User",
    "check_account",
    "check_endpoint",
    "check_fields",
    "check_id",
    "check_public_key",
    "check_sensor_type",
]

MAX_ENDPOINT = 256
ENDPOINT_SCHEMES = ("http", "https", "mqtt", "mqtts", "ws", "wss", "tcp", "tls")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_SENSOR_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,31}")


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
