"""What a device declares: its sensors (signed readings) and actuators (shadow keys).

A :class:`SensorSpec` becomes, with the sensor's signing key, the declaration
``d_s = {PU_s, c_s, type_1 x_1, ...}`` of paper 002 that is registered on-chain and
that every consumer checks messages against. An :class:`ActuatorSpec` binds a key of
the shadow's ``desired`` state to the code that moves the hardware (paper 004,
section 4.8: delta in, actuator, ``reported`` out).

Signed readings travel on ``pervasive/devices/<device id>/sensors/<sensor name>``.

Example::

    location = SensorSpec("location", "location", (("cell", "string"), ("time", "uint64")))
    location.declaration(key.public_key)       # SensorDeclaration
    validate_sensor_name("Bad/Name")           # InvalidInput: sensor name ... is invalid
    sensor_topic("container-1", "location")    # 'pervasive/devices/container-1/sensors/location'
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pervasive.crypto import PublicKey
from pervasive.errors import InvalidInput
from pervasive.messaging.topics import device_topic, parse_device_topic
from pervasive.sensing import SensorDeclaration

__all__ = [
    "SENSOR_LEVEL",
    "ActuatorHandler",
    "ActuatorSpec",
    "SensorSpec",
    "parse_sensor_topic",
    "sensor_topic",
    "validate_sensor_name",
]

SENSOR_LEVEL = "sensors"
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")

ActuatorHandler = Callable[[Any], Awaitable[Any]]
"""Receives the desired value; returns the value to report (``None``: the desired value)."""


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{kind} name {name!r} is invalid: 1-32 lowercase letters, digits, '_' or '-', "
            "starting with a letter"
        )
    return name


def validate_sensor_name(name: str) -> str:
    """Return ``name`` if it can name a sensor (topic level, key file, on-chain id suffix).

    Example: ``validate_sensor_name("location")`` returns ``'location'``.
    """
    return _check_name("sensor", name)


@dataclass(frozen=True)
class SensorSpec:
    """A sensor of a device: its name (topic level), kind ``c_s`` and typed variables."""

    name: str
    sensor_type: str
    fields: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        _check_name("sensor", self.name)

    def declaration(self, public_key: PublicKey) -> SensorDeclaration:
        """The declaration ``d_s`` of this sensor signing with ``public_key``.

        Example: ``spec.declaration(key.public_key).address``.
        """
        return SensorDeclaration.create(public_key, self.sensor_type, list(self.fields))


@dataclass(frozen=True)
class ActuatorSpec:
    """An actuator following the shadow key ``key`` of ``desired``."""

    key: str
    handler: ActuatorHandler

    def __post_init__(self) -> None:
        _check_name("actuator", self.key)


def sensor_topic(device_id: str, sensor: str) -> str:
    """The topic of ``sensor``'s signed readings.

    Example: ``sensor_topic("lock-7", "lock")`` is ``'pervasive/devices/lock-7/sensors/lock'``.
    """
    return device_topic(device_id, f"{SENSOR_LEVEL}/{_check_name('sensor', sensor)}")


def parse_sensor_topic(topic: str) -> tuple[str, str]:
    """``(device id, sensor name)`` of a sensor topic; :class:`InvalidInput` otherwise.

    Example: ``parse_sensor_topic("pervasive/devices/a/sensors/location") == ("a", "location")``.
    """
    device_id, suffix = parse_device_topic(topic)
    level, _, sensor = suffix.partition("/")
    if level != SENSOR_LEVEL:
        raise InvalidInput(f"{topic!r} is not a sensor topic (.../sensors/<name>)")
    return device_id, _check_name("sensor", sensor)
