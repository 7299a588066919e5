"""Which sensor of which device may sign what: the on-chain registry as declarations.

``pervasive device register`` records each sensor of a device in the registry under the
id ``<device id>.<sensor name>`` with its declaration ``d_s`` (key ``PU_s``, kind
``c_s``, typed variables). A consumer of readings (a service runtime, an oracle node)
accepts a reading on ``pervasive/devices/<device>/sensors/<sensor>`` only when it is
signed by the key declared for **that** device's sensor: :data:`Declarations` is that
map, built from the registry's sensors by :func:`registered_declarations`.

Example::

    declarations = registered_declarations(await registry.list_sensors())
    declarations["container-1"]["location"].address     # the sensor's signing address
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pervasive.crypto import PublicKey
from pervasive.domain import Sensor
from pervasive.sensing import SensorDeclaration

__all__ = ["Declarations", "registered_declarations"]

Declarations = Mapping[str, Mapping[str, SensorDeclaration]]
"""Device id -> sensor name -> the sensor's declaration ``d_s`` (who may sign what)."""


def registered_declarations(sensors: Iterable[Sensor]) -> dict[str, dict[str, SensorDeclaration]]:
    """The active sensors of the on-chain registry as :data:`Declarations`.

    A sensor registered by ``pervasive device register`` has the id
    ``<device id>.<sensor name>``; others (and deactivated ones) are skipped.

    Example: ``registered_declarations(await registry.list_sensors())``.
    """
    out: dict[str, dict[str, SensorDeclaration]] = {}
    for sensor in sensors:
        device, dot, name = sensor.id.rpartition(".")
        if not (sensor.active and dot and device):
            continue
        declaration = SensorDeclaration(
            PublicKey.from_bytes(sensor.public_key), sensor.sensor_type, sensor.fields
        )
        out.setdefault(device, {})[name] = declaration
    return out
