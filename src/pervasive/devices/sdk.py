"""The device SDK: sign readings, publish them through the durable outbox, follow the shadow.

Control flow of a :class:`Device`:

1. :meth:`Device.publish` takes the next sequence number ``q`` of the sensor
   (:class:`SequenceCounter`), signs ``m_{s,q}`` (paper 002's format, encoded by
   :mod:`pervasive.sensing.message`) and hands the bytes to the outbox
   (:meth:`Device.publish_many`: a batch in one transaction). Online, the MQTT
   client's drain sends them; offline (:meth:`Device.disconnect`, or a lost network)
   they wait on disk and leave, in order, once connected again. Nothing accepted is lost.
2. A reader task routes what the broker delivers: shadow replies go to a
   :class:`~pervasive.shadow.client.ShadowClient`, whose deltas are dispatched to the
   actuators by desired key; their results are reported back (paper 004, section 4.8).
3. After every (re)connect the shadow is re-synchronised (``get``, then the current
   delta), so a desired change made while the device was away is never missed.

Example::

    device = Device("container-1", DeviceFolder(path), host="127.0.0.1", port=broker.port,
                    sensors=[SensorSpec("location", "location", (("cell", "string"),
                                                                  ("time", "uint64")))])
    async with device:
        q = await device.publish("location", {"cell": "c-12", "time": 1_700_000_000})
        await device.flush()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from pervasive.devices.declarations import ActuatorSpec, SensorSpec, sensor_topic
from pervasive.devices.identity import DeviceFolder
from pervasive.devices.sequence import SequenceCounter
from pervasive.devices.wire import sign_reading
from pervasive.errors import InvalidInput, NotFound, SchemaViolation
from pervasive.messaging.client import ClientOptions, MqttClient
from pervasive.messaging.outbox import Outbox
from pervasive.messaging.topics import validate_device_id
from pervasive.sensing import SensorDeclaration
from pervasive.shadow.client import ShadowClient
from pervasive.shadow.document import JsonObject

__all__ = ["Device"]

_log = logging.getLogger(__name__)


def _in_declared_order(
    declaration: SensorDeclaration, values: Sequence[Any] | Mapping[str, Any]
) -> Sequence[Any]:
    """``values`` as a list in declaration order; :class:`SchemaViolation` for a wrong name set."""
    if not isinstance(values, Mapping):
        return values
    names = [f.name for f in declaration.fields]
    missing = [n for n in names if n not in values]
    extra = sorted(set(values) - set(names))
    if missing or extra:
        raise SchemaViolation(f"values missing {missing} / undeclared {extra}")
    return [values[n] for n in names]


class Device:
    """One device: sensors that sign, actuators that follow the shadow, a durable client.

    ``max_inflight`` readings may await their PUBACK at once
    (:attr:`~pervasive.messaging.client.ClientOptions.max_inflight`: raise it with mosquitto).
    ``autosave_interval`` is the broker's (``[mqtt] autosave_interval``): a reading stays
    in the outbox that long (plus 2 s) after its PUBACK and is sent again if the
    connection drops first, so a broker killed before saving it loses nothing.
    The MQTT client id is the certificate's identity, ``device_id``.
    """

    def __init__(
        self,
        device_id: str,
        folder: DeviceFolder,
        *,
        host: str,
        port: int,
        sensors: Iterable[SensorSpec] = (),
        actuators: Iterable[ActuatorSpec] = (),
        lease: int = 256,
        keepalive: int = 30,
        max_inflight: int = 1,
        resync_poll: float = 0.2,
        autosave_interval: int = 5,
    ) -> None:
        self.device_id = validate_device_id(device_id)
        self.folder = folder
        self._host, self._port, self._keepalive = host, port, keepalive
        self._max_inflight = max_inflight
        self._autosave_interval = autosave_interval
        self._sensors = {spec.name: spec for spec in sensors}
        self._actuators = {spec.key: spec for spec in actuators}
        self._keys = {name: folder.signing_key(name) for name in self._sensors}
        self._declarations = {
            name: spec.declaration(self._keys[name].public_key)
            for name, spec in self._sensors.items()
        }
        self._topics = {name: sensor_topic(device_id, name) for name in self._sensors}
        folder.path.mkdir(parents=True, exist_ok=True)
        self._counter = SequenceCounter.open(folder.sequence_path, lease=lease)
        self._shadow = ShadowClient(device_id, self._on_delta)
        self._client: MqttClient | None = None
        self._offline: Outbox | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._resync_poll = resync_poll
        self.published = 0
        """Readings signed and accepted into the outbox by this object."""
        self.actuations = 0
        """Desired values handed to actuators."""

    # -- declarations -------------------------------------------------------------------
    def declarations(self) -> list[SensorDeclaration]:
        """Every sensor's declaration, in declaration order."""
        return list(self._declarations.values())

    def declaration(self, sensor: str) -> SensorDeclaration:
        """The declaration ``d_s`` of ``sensor`` (register it on-chain; consumers check against it).

        Example: ``registry.add_sensor(..., device.declaration("location").public_key ...)``.
        """
        try:
            return self._declarations[sensor]
        except KeyError:
            raise NotFound(f"device {self.device_id!r} declares no sensor {sensor!r}") from None

    # -- connection ---------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while the MQTT connection is up."""
        return self._client is not None and self._client.connected

    @property
    def pending(self) -> int:
        """Readings in the outbox that the broker has not acknowledged yet."""
        if self._client is not None:
            return self._client.pending
        return len(self._offline) if self._offline is not None else 0

    @property
    def retained(self) -> int:
        """Readings the broker acknowledged that the outbox keeps until it surely saved them."""
        return self._client.retained if self._client is not None else 0

    async def connect(self) -> None:
        """Connect (with the device certificate), resume the outbox, synchronise the shadow.

        Example: ``await device.connect()``; or ``async with device: ...``.
        """
        if self._client is not None:
            return
        if self._offline is not None:
            self._offline.close()
            self._offline = None
        client = MqttClient(
            ClientOptions(
                self._host,
                self._port,
                self.folder.credentials(),
                outbox=self.folder.outbox_path,
                keepalive=self._keepalive,
                max_inflight=self._max_inflight,
                autosave_interval=self._autosave_interval,
            )
        )
        await client.connect()
        self._client = client
        await self._shadow.synchronize(client)
        self._tasks = [
            asyncio.create_task(self._read(client), name=f"device-{self.device_id}-read"),
            asyncio.create_task(self._resync(client), name=f"device-{self.device_id}-resync"),
        ]

    async def disconnect(self) -> None:
        """Go offline; readings published meanwhile wait in the outbox.

        Example: ``await device.disconnect(); await device.publish(...)  # kept on disk``.
        """
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def close(self) -> None:
        """Disconnect and close the local databases."""
        await self.disconnect()
        if self._offline is not None:
            self._offline.close()
            self._offline = None
        self._counter.close()

    async def __aenter__(self) -> Device:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- readings -----------------------------------------------------------------------
    def sign(self, sensor: str, values: Sequence[Any] | Mapping[str, Any]) -> tuple[int, bytes]:
        """Take the next ``q`` of ``sensor`` and sign ``values``: ``(q, wire bytes)``.

        Example: ``q, wire = device.sign("location", {"cell": "c-1", "time": 5})``.
        """
        return self._sign_checked(sensor, self._checked(sensor, values))

    def _checked(self, sensor: str, values: Sequence[Any] | Mapping[str, Any]) -> Sequence[Any]:
        """``values`` in declaration order, checked: a schema error must not consume a number."""
        declaration = self.declaration(sensor)
        ordered = _in_declared_order(declaration, values)
        declaration.validate(ordered)
        return ordered

    def _sign_checked(self, sensor: str, values: Sequence[Any]) -> tuple[int, bytes]:
        sequence = self._counter.next(sensor)
        wire = sign_reading(self._keys[sensor], self._declarations[sensor], sequence, values)
        return sequence, wire

    async def publish(self, sensor: str, values: Sequence[Any] | Mapping[str, Any]) -> int:
        """Sign a reading of ``sensor`` and commit it to the outbox; returns its ``q``.

        Works offline: the reading leaves when the device is connected again.

        Example: ``q = await device.publish("location", {"cell": "c-12", "time": now})``.
        """
        sequence, wire = self.sign(sensor, values)
        await self.publish_signed(sensor, wire)
        return sequence

    async def publish_many(
        self, sensor: str, readings: Iterable[Sequence[Any] | Mapping[str, Any]]
    ) -> list[int]:
        """Sign several readings of ``sensor`` and commit them in one outbox transaction.

        For a device that samples faster than it publishes: one commit per batch
        instead of one per reading. Returns their sequence numbers.

        Example: ``await device.publish_many("location", [{"cell": "c-1", "time": t} ...])``.
        """
        checked = [self._checked(sensor, values) for values in readings]
        signed = [self._sign_checked(sensor, values) for values in checked]
        await self.publish_signed_many(sensor, [wire for _, wire in signed])
        return [sequence for sequence, _ in signed]

    async def publish_signed(self, sensor: str, wire: bytes) -> None:
        """Commit an already signed reading of ``sensor`` to the outbox (see :meth:`sign`)."""
        await self.publish_signed_many(sensor, [wire])

    async def publish_signed_many(self, sensor: str, wires: Sequence[bytes]) -> None:
        """Commit already signed readings of ``sensor`` to the outbox in one transaction.

        Example: ``await device.publish_signed_many("location", [w1, w2])``.
        """
        topic = self._topics.get(sensor)
        if topic is None:
            raise NotFound(f"device {self.device_id!r} declares no sensor {sensor!r}")
        if self._client is not None:
            await self._client.publish_many([(topic, wire) for wire in wires], qos=1)
        else:
            if self._offline is None:
                self._offline = Outbox.open(self.folder.outbox_path)
            self._offline.append_many([(topic, wire) for wire in wires], qos=1)
        self.published += len(wires)

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until the broker acknowledged every reading (only while connected).

        Example: ``await device.flush(timeout=10)``.
        """
        if self._client is None:
            raise InvalidInput(f"device {self.device_id!r} is offline: connect before flushing")
        await self._client.flush(timeout)

    # -- shadow -------------------------------------------------------------------------
    async def report(self, reported: JsonObject) -> None:
        """Publish ``reported`` state to the device's shadow (through the outbox).

        Example: ``await device.report({"door": "closed"})``.
        """
        if self._client is None:
            raise InvalidInput(f"device {self.device_id!r} is offline: connect before reporting")
        await self._shadow.report(self._client, reported)

    async def _on_delta(self, delta: JsonObject) -> JsonObject | None:
        reported: JsonObject = {}
        for key, value in delta.items():
            actuator = self._actuators.get(key)
            if actuator is None:
                _log.info("%s: no actuator for desired key %r", self.device_id, key)
                continue
            result = await actuator.handler(value)
            self.actuations += 1
            reported[key] = value if result is None else result
        return reported

    async def _read(self, client: MqttClient) -> None:
        async for message in client.messages():
            await self._shadow.handle(client, message)

    async def _resync(self, client: MqttClient) -> None:
        seen = client.reconnects
        while True:
            await asyncio.sleep(self._resync_poll)
            if client.reconnects != seen and client.connected:
                seen = client.reconnects
                await self._shadow.synchronize(client)
