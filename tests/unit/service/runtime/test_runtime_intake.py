"""Readings are verified (signature, declared for that device's sensor, sequence) before
their calls are accepted; every refusal raises its documented error and is counted."""

from __future__ import annotations

import pytest

from pervasive.contracts.contract import Function
from pervasive.crypto import PrivateKey
from pervasive.devices import SensorSpec, registered_declarations, sensor_topic, sign_reading
from pervasive.domain import Sensor
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage, SchemaViolation
from pervasive.service.inbox import Inbox
from pervasive.service.runtime import topic_filters
from pervasive.service.spec import MqttBinding
from pervasive.service.things import ReadingBinding, ReadingIntake

DELIVERY = SensorSpec("delivery", "delivery", (("shipment", "string"), ("time", "uint64")))
OTHER = SensorSpec("other", "other", (("shipment", "string"), ("time", "uint64")))
KEYS = {"c-1": PrivateKey(b"\x01" * 32), "c-2": PrivateKey(b"\x02" * 32)}
OTHER_KEY = PrivateKey(b"\x03" * 32)
DECLARATIONS = {
    "c-1": {
        "delivery": DELIVERY.declaration(KEYS["c-1"].public_key),
        "other": OTHER.declaration(OTHER_KEY.public_key),
    },
    "c-2": {"delivery": DELIVERY.declaration(KEYS["c-2"].public_key)},
}
CONFIRM = Function("confirm_delivery", ("string", "string", "uint64"), (), "nonpayable")


def wire(device: str, q: int, shipment: str = "ship-1", *, key: PrivateKey | None = None) -> bytes:
    declaration = DECLARATIONS[device]["delivery"]
    return sign_reading(key or KEYS[device], declaration, q, {"shipment": shipment, "time": 50})


def intake(topic: str = "pervasive/devices/+/sensors/delivery", **extra: object) -> ReadingIntake:
    binding = MqttBinding(
        topic=topic,
        function="confirm_delivery",
        args=["shipment", "$device", "$sequence"],
        **extra,  # type: ignore[arg-type]
    )
    return ReadingIntake(
        [ReadingBinding.compile(0, binding, CONFIRM)], DECLARATIONS, Inbox.open(":memory:")
    )


def test_a_signed_reading_becomes_one_encoded_call() -> None:
    gate = intake()
    [call_id] = gate.accept(sensor_topic("c-1", "delivery"), wire("c-1", 1))
    call = gate.inbox.get(call_id)
    assert call.calldata == CONFIRM.encode(("ship-1", "c-1", 1))
    assert (call.origin, call.source, call.function) == ("mqtt", "c-1", "confirm_delivery")
    assert gate.counters == {"accepted": 1}


def test_refusals_raise_their_error_and_are_counted_by_reason() -> None:
    gate = intake()
    topic = sensor_topic("c-1", "delivery")
    gate.accept(topic, wire("c-1", 2))
    with pytest.raises(ReplayedMessage):
        gate.accept(topic, wire("c-1", 2))
    with pytest.raises(ReplayedMessage):
        gate.accept(topic, wire("c-1", 1))
    with pytest.raises(InvalidSignature, match="c-2's sensor 'delivery' arrived on c-1's"):
        gate.accept(topic, wire("c-2", 3))
    forged = wire("c-1", 3).replace(b"ship-1", b"ship-2")  # the values, not what was signed
    with pytest.raises(InvalidSignature):
        gate.accept(topic, forged)
    stranger = PrivateKey(b"\x09" * 32)
    undeclared = sign_reading(stranger, DELIVERY.declaration(stranger.public_key), 3, ["x", 1])
    with pytest.raises(SchemaViolation):  # a key declared for no device
        gate.accept(topic, undeclared)
    with pytest.raises(InvalidInput):
        gate.accept(topic, b"not a reading")
    with pytest.raises(InvalidInput):
        gate.accept("pervasive/devices/c-1/sensors/BAD TOPIC", wire("c-1", 3))
    assert gate.counters == {
        "accepted": 1, "replay": 2, "impostor": 1, "signature": 1, "schema": 1, "malformed": 2,
    }  # fmt: skip
    assert len(gate.inbox.calls()) == 1


def test_a_key_of_the_same_device_but_another_sensor_is_an_impostor() -> None:
    gate = intake()
    other = sign_reading(OTHER_KEY, DECLARATIONS["c-1"]["other"], 1, ["ship-1", 5])
    with pytest.raises(InvalidSignature, match="sensor 'other'"):
        gate.accept(sensor_topic("c-1", "delivery"), other)
    assert gate.counters["impostor"] == 1


def test_readings_no_binding_takes_are_ignored_uncounted() -> None:
    gate = intake("pervasive/devices/+/sensors/delivery", devices=["c-2"])
    assert gate.accept(sensor_topic("c-1", "delivery"), b"anything") == []
    assert gate.accept(sensor_topic("c-2", "other"), b"anything") == []
    assert not gate.counters
    assert gate.accept(sensor_topic("c-2", "delivery"), wire("c-2", 1))


def test_a_reading_whose_field_does_not_fit_the_function_is_refused_unrecorded() -> None:
    function = Function("f", ("uint64",), (), "nonpayable")
    binding = MqttBinding(topic="pervasive/devices/c-1/sensors/delivery", function="f",
                          args=["shipment"])  # fmt: skip
    gate = ReadingIntake([ReadingBinding.compile(0, binding, function)], DECLARATIONS,
                         Inbox.open(":memory:"))  # fmt: skip
    with pytest.raises(SchemaViolation, match=r"argument 1 \(shipment\) of f\(uint64\)"):
        gate.accept(sensor_topic("c-1", "delivery"), wire("c-1", 1))
    assert gate.counters == {"schema": 1}
    assert gate.inbox.last_sequence(DECLARATIONS["c-1"]["delivery"].address) is None


def test_subscriptions_never_overlap() -> None:
    wide, narrow = "pervasive/devices/+/sensors/a", "pervasive/devices/d/sensors/a"
    assert topic_filters({wide, narrow}) == [wide]
    assert topic_filters({narrow, "pervasive/devices/d/sensors/b"}) == [
        narrow,
        "pervasive/devices/d/sensors/b",
    ]
    crossing = {wide, "pervasive/devices/d/sensors/+"}
    assert topic_filters(crossing) == ["pervasive/devices/+/sensors/+"]


def test_registered_sensors_become_declarations_by_device_and_sensor() -> None:
    declared = DECLARATIONS["c-1"]["delivery"]

    def sensor(sensor_id: str, *, active: bool = True) -> Sensor:
        return Sensor(sensor_id, declared.public_key.to_bytes(), declared.sensor_type,
                      declared.fields, "0x" + "00" * 20, active)  # fmt: skip

    found = registered_declarations(
        [sensor("lock.7.delivery"), sensor("retired.delivery", active=False), sensor("nodot")]
    )
    assert found == {"lock.7": {"delivery": declared}}
