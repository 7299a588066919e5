"""The device SDK and the device simulator.

See README.md in this folder for the control flow.

Example::

    from pervasive.devices import Device, DeviceFolder, SensorSpec
"""

from pervasive.devices.declarations import (
    ActuatorHandler,
    ActuatorSpec,
    SensorSpec,
    parse_sensor_topic,
    sensor_topic,
)
from pervasive.devices.identity import DeviceFolder
from pervasive.devices.registered import Declarations, registered_declarations
from pervasive.devices.sdk import Device
from pervasive.devices.sequence import SequenceCounter
from pervasive.devices.wire import Reading, ReadingVerifier, peek_public_key, sign_reading

__all__ = [
    "ActuatorHandler",
    "ActuatorSpec",
    "Declarations",
    "Device",
    "DeviceFolder",
    "Reading",
    "ReadingVerifier",
    "SensorSpec",
    "SequenceCounter",
    "parse_sensor_topic",
    "peek_public_key",
    "registered_declarations",
    "sensor_topic",
    "sign_reading",
]
