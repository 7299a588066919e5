"""MQTT bindings: signed device readings become accepted contract calls (paper 001, 3.1).

A ``[[mqtt]]`` binding says "a reading on ``pervasive/devices/+/sensors/delivery``
calls ``confirm_delivery(shipment, $device)``". :class:`ReadingIntake` accepts one
MQTT message synchronously (no ``await``: a cancelled task never leaves a message half
taken), in this order, each refusal counted by reason and raised:

1. the topic names a device and a sensor (``malformed``); bindings whose topic and
   ``devices`` match it are found (none: not this service's business, ignored);
2. the payload is a reading correctly signed by a key declared **for that device's
   sensor**: an undeclared key or wrong values is ``schema``, a bad signature
   ``signature``, a key declared for another device or sensor ``impostor``
   (:class:`~pervasive.devices.ReadingVerifier`, :func:`~pervasive.devices.peek_public_key`);
3. each binding's arguments are resolved to the function's ABI types and encoded
   (``schema`` when a field is missing or does not fit);
4. the inbox records the calls **and** the sequence number in one transaction; a
   sequence number not above the last accepted one is a ``replay``.

A device that was offline delivers its outbox later, in order: each reading carries
its own sequence number, so each is accepted once and its call applied once.

Example::

    intake = ReadingIntake(bindings, declarations, inbox)
    intake.accept(message.topic, message.payload)     # [call ids] or raises, counted
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pervasive.contracts.contract import Function
from pervasive.devices import Declarations, ReadingVerifier, parse_sensor_topic, peek_public_key
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage, SchemaViolation
from pervasive.service.arguments import ArgumentPlan
from pervasive.service.inbox import Inbox, NewCall
from pervasive.service.spec import MqttBinding

__all__ = ["ReadingBinding", "ReadingIntake"]


@dataclass(frozen=True)
class ReadingBinding:
    """A compiled ``[[mqtt]]`` binding: its topic, function and argument plan."""

    index: int
    binding: MqttBinding
    function: Function
    plan: ArgumentPlan

    @classmethod
    def compile(cls, index: int, binding: MqttBinding, function: Function) -> ReadingBinding:
        """Compile ``binding`` against ``function`` (:class:`SpecError` when it does not fit)."""
        plan = ArgumentPlan.compile(
            binding.args, function.inputs, origin="mqtt", function=function.signature
        )
        return cls(index, binding, function, plan)

    def matches(self, device: str, sensor: str) -> bool:
        """Whether a reading of ``device``'s ``sensor`` calls this binding's function."""
        binding = self.binding
        if binding.sensor != sensor:
            return False
        if binding.device is not None:
            return binding.device == device
        return binding.devices is None or device in binding.devices


class ReadingIntake:
    """Verify readings and accept the calls of the bindings they match into the inbox."""

    def __init__(
        self,
        bindings: Iterable[ReadingBinding],
        declarations: Declarations,
        inbox: Inbox,
        *,
        counters: Counter[str] | None = None,
    ) -> None:
        self.bindings = tuple(bindings)
        self.inbox = inbox
        self.counters: Counter[str] = counters if counters is not None else Counter()
        """``accepted`` readings and refusals by reason (malformed, schema, signature,
        impostor, replay)."""
        self._owners: dict[bytes, tuple[str, str]] = {}
        for device, sensors in declarations.items():
            for sensor, declaration in sensors.items():
                self._owners[declaration.public_key.to_bytes()] = (device, sensor)
        self._verifier = ReadingVerifier(
            d for sensors in declarations.values() for d in sensors.values()
        )
        self._names = {
            key: tuple(f.name for f in declarations[device][sensor].fields)
            for key, (device, sensor) in self._owners.items()
        }

    def wants(self, device: str, sensor: str) -> bool:
        """Whether any binding takes readings of ``device``'s ``sensor``."""
        return any(b.matches(device, sensor) for b in self.bindings)

    def accept(self, topic: str, payload: bytes, *, now: float | None = None) -> list[int]:
        """Verify one reading and accept its calls; return their inbox ids.

        Raises, after counting: :class:`InvalidInput` (malformed topic or bytes),
        :class:`SchemaViolation` (undeclared sensor, wrong values, arguments that do not
        fit), :class:`InvalidSignature` (forged, or another device's sensor),
        :class:`ReplayedMessage` (sequence number not above the last accepted).

        Example: ``intake.accept("pervasive/devices/c-1/sensors/delivery", payload)``.
        """
        try:
            device, sensor = parse_sensor_topic(topic)
        except InvalidInput:
            self.counters["malformed"] += 1
            raise
        matching = [b for b in self.bindings if b.matches(device, sensor)]
        if not matching:
            return []
        try:
            reading = self._verifier.verify(payload)
        except SchemaViolation:
            self.counters["schema"] += 1
            raise
        except InvalidSignature:
            self.counters["signature"] += 1
            raise
        except InvalidInput:
            self.counters["malformed"] += 1
            raise
        key = peek_public_key(payload)
        owner = self._owners[key]
        if owner != (device, sensor):
            self.counters["impostor"] += 1
            raise InvalidSignature(
                f"a reading signed by {owner[0]}'s sensor {owner[1]!r} arrived on "
                f"{device}'s {sensor!r} topic"
            )
        fields = dict(zip(self._names[key], reading.values, strict=True))
        moment = fields.get("time")
        specials = {
            "device": device,
            "sequence": reading.sequence,
            "time": moment if isinstance(moment, int) else int(now or time.time()),
        }
        calls = []
        try:
            for binding in matching:
                args = binding.plan.resolve(fields, specials)
                calls.append(
                    NewCall(
                        origin="mqtt",
                        source=device,
                        reference=f"{reading.sensor}:{reading.sequence}:{binding.index}",
                        function=binding.function.name,
                        calldata=binding.function.encode(args),
                    )
                )
        except InvalidInput:  # SchemaViolation, or a value abi_encode refuses
            self.counters["schema"] += 1
            raise
        try:
            ids = self.inbox.accept_reading(reading.sensor, reading.sequence, calls)
        except ReplayedMessage:
            self.counters["replay"] += 1
            raise
        self.counters["accepted"] += 1
        return ids
