"""The device side of signed sensor messages ``m_{s,q}`` (paper 002, section 3).

This module holds no codec of its own: the format belongs to :mod:`pervasive.offchain`.

- signing is :func:`pervasive.sensing.message.sign_sensor_message` (the
  reference encoder; a device signs on its own CPU, one reading at a time);
- verification is :class:`pervasive.sensing.verifier.SensorVerifier`, the
  intermediate node's fast path (checked against the reference by a property test);
  :class:`ReadingVerifier` adds what a consumer of readings wants on top of it: the
  values ``d_q`` decoded as the declaration types them.

Example::

    wire = sign_reading(key, declaration, 7, {"cell": "c-12", "time": 1_700_000_000})
    ReadingVerifier([declaration]).verify(wire)   # Reading(sensor=..., sequence=7, ...)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pervasive.crypto import PrivateKey
from pervasive.errors import InvalidInput
from pervasive.sensing import SensorDeclaration
from pervasive.sensing.message import sign_sensor_message
from pervasive.sensing.verifier import SensorVerifier as MessageVerifier

__all__ = ["Reading", "ReadingVerifier", "peek_public_key", "sign_reading"]

_HEAD = 5 * 32


@dataclass(frozen=True)
class Reading:
    """A verified message: who sent it, its sequence number ``q`` and its values ``d_q``."""

    sensor: str
    """The sensor's address (derived from ``PU_s``)."""
    sequence: int
    values: tuple[Any, ...]


def sign_reading(
    key: PrivateKey,
    declaration: SensorDeclaration,
    sequence: int,
    values: Sequence[Any] | Mapping[str, Any],
) -> bytes:
    """The wire form of ``m_{s,q}`` signed with ``key`` (the declared ``PU_s``).

    Raises :class:`~pervasive.errors.SchemaViolation` for values that do not match the
    declaration and :class:`~pervasive.errors.InvalidInput` for another key.

    Example: ``client.publish(topic, sign_reading(key, decl, q, {"celsius": 21}))``.
    """
    return sign_sensor_message(key, declaration, sequence, values).encode()


def peek_public_key(wire: bytes) -> bytes:
    """The 64-byte ``PU_s`` a wire message claims, without checking anything else.

    Example: ``sources[peek_public_key(payload)]`` picks the sensor before verifying.
    """
    start = _HEAD + 32
    if (
        len(wire) < start + 64
        or int.from_bytes(wire[:32], "big") != _HEAD
        or int.from_bytes(wire[_HEAD:start], "big") != 64
    ):
        raise InvalidInput("not a sensor message: no 64-byte public key where expected")
    return bytes(wire[start : start + 64])


class ReadingVerifier:
    """Verify messages of many sensors and decode their values.

    Every check (canonical encoding, declared key and kind, values, signature) is the
    node's :class:`~pervasive.sensing.verifier.SensorVerifier`; it raises what
    that raises (:class:`SchemaViolation` for an undeclared sensor or wrong values,
    :class:`InvalidSignature`, :class:`InvalidInput` for undecodable bytes).

    Example::

        verifier = ReadingVerifier(device.declarations())
        reading = verifier.verify(payload)    # Reading(sensor, sequence, values)
    """

    def __init__(self, declarations: Iterable[SensorDeclaration] = ()) -> None:
        self._declarations = {d.public_key.to_bytes(): d for d in declarations}
        self._messages = MessageVerifier(self._declarations.values())

    def __contains__(self, sensor_key: bytes) -> bool:
        return sensor_key in self._declarations

    def verify(self, wire: bytes) -> Reading:
        """Verify one wire message; return who sent it, its ``q`` and its decoded values.

        Example: ``verifier.verify(payload).values  # ('c-12', 1700000000)``.
        """
        message = self._messages.verify(wire)
        declaration = self._declarations[message.public_key.to_bytes()]
        values = declaration.decode_values(message.values)
        return Reading(message.sensor, message.sequence, values)
