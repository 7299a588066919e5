"""Devices on a real mosquitto: signed readings arrive verified, offline readings are kept,
the shadow drives actuators, the simulator loses nothing across random disconnects."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest

from device_platform import receive
from pervasive.devices import (
    ActuatorSpec,
    Device,
    Reading,
    ReadingVerifier,
    SensorSpec,
    parse_sensor_topic,
)
from pervasive.devices.simulator import LOCATION_SENSOR, SimulationPlan, Simulator
from pervasive.errors import SchemaViolation
from pervasive.messaging import MqttClient, shadow_topic
from pervasive.shadow import ShadowService, ShadowStore

if TYPE_CHECKING:  # the fixture's type; conftest.py is not importable by name
    from device_platform import DevicePlatform

pytestmark = pytest.mark.mosquitto
THERMO = SensorSpec("thermo", "temperature", (("celsius", "int64"), ("time", "uint64")))


async def test_readings_are_signed_in_order_and_survive_going_offline(
    device_platform: DevicePlatform,
) -> None:
    (folder,) = await device_platform.provision("thermo-1")
    device = Device("thermo-1", folder, host="127.0.0.1",
                    port=device_platform.broker.port, sensors=[THERMO])  # fmt: skip
    verifier = ReadingVerifier(device.declarations())
    async with MqttClient(await device_platform.service_options("svc:monitor")) as monitor:
        await monitor.subscribe("pervasive/devices/+/sensors/+")
        async with device:
            assert await device.publish("thermo", {"celsius": 21, "time": 1}) == 0
            await device.flush(timeout=10)
            await device.disconnect()
            for celsius in (22, 23):  # offline: into the outbox on disk
                await device.publish("thermo", {"celsius": celsius, "time": 2})
            assert device.pending == 2
            await device.connect()
            await device.flush(timeout=10)
            # reading 0 was acknowledged < autosave_interval + 2 s before the disconnect:
            # the outbox sends it again (the broker may not have saved it); a consumer
            # refuses the q it has seen (SequenceTracker)
            received = await receive(monitor, 4)
    readings = [verifier.verify(m.payload) for m in received]
    assert [(r.sequence, r.values[0]) for r in readings] == [(0, 21), (0, 21), (1, 22), (2, 23)]
    assert {parse_sensor_topic(m.topic) for m in received} == {("thermo-1", "thermo")}


async def test_the_shadow_drives_an_actuator_and_gets_the_report(
    device_platform: DevicePlatform,
) -> None:
    moved: list[object] = []

    async def door(value: object) -> object:
        moved.append(value)
        return value

    store = ShadowStore.open(device_platform.root / "shadow.sqlite")
    async with (
        MqttClient(await device_platform.service_options("svc:shadow")) as shadow_connection,
        MqttClient(await device_platform.service_options("svc:gateway")) as gateway,
    ):
        service = ShadowService(shadow_connection, store)
        task = asyncio.create_task(service.run())
        await asyncio.sleep(0.2)
        # desired is set while the device is offline: it must still act on reconnect
        await gateway.subscribe(shadow_topic("lock-1", "update", "documents"))
        await gateway.publish(
            shadow_topic("lock-1", "update"), b'{"state":{"desired":{"door":"open"}}}'
        )
        await receive(gateway, 1)
        (folder,) = await device_platform.provision("lock-1")
        device = Device(
            "lock-1",
            folder,
            host="127.0.0.1",
            port=device_platform.broker.port,
            actuators=[ActuatorSpec("door", door)],
        )
        async with device:
            (documents,) = await receive(gateway, 1)
        task.cancel()
    current = json.loads(documents.payload)["current"]["state"]
    assert moved == ["open"]
    assert current["reported"] == {"door": "open"}


async def test_simulated_devices_lose_nothing_across_random_disconnects(
    device_platform: DevicePlatform,
) -> None:
    plan = SimulationPlan(devices=4, rate=20, duration=2.0, disconnect_rate=0.4,
                          offline_seconds=0.3, seed=3)  # fmt: skip
    async with MqttClient(await device_platform.service_options("svc:monitor")) as monitor:
        await monitor.subscribe("pervasive/devices/+/sensors/+")
        await device_platform.provision(*plan.device_ids())
        report = await Simulator(plan, provision=device_platform.folder, host="127.0.0.1",
                                 port=device_platform.broker.port).run()  # fmt: skip
        assert report.disconnects > 0 and report.pending == 0
        verifier = ReadingVerifier(
            LOCATION_SENSOR.declaration(
                device_platform.folder(d).signing_key("location").public_key
            )
            for d in plan.device_ids()
        )
        # at least once: a reading in flight at a disconnect may arrive twice, so count
        # distinct (sensor, q), not messages; a missing one times out in receive()
        seen: set[tuple[object, int]] = set()
        while len(seen) < report.published:
            (message,) = await receive(monitor, 1)
            reading = verifier.verify(message.payload)
            seen.add((reading.sensor, reading.sequence))
    assert len(seen) == report.published  # every reading, none missing


async def test_a_batch_of_readings_arrives_whole_in_order_with_a_window(
    device_platform: DevicePlatform,
) -> None:
    port = device_platform.broker.port
    (folder,) = await device_platform.provision("thermo-2")
    device = Device("thermo-2", folder, host="127.0.0.1",
                    port=port, sensors=[THERMO], max_inflight=16)  # fmt: skip
    verifier = ReadingVerifier(device.declarations())
    async with MqttClient(await device_platform.service_options("svc:monitor")) as monitor:
        await monitor.subscribe("pervasive/devices/+/sensors/+")
        async with device:
            with pytest.raises(SchemaViolation):  # one bad reading: nothing of the batch is kept
                await device.publish_many("thermo", [{"celsius": 1, "time": 1}, {"celsius": "x"}])
            sequences = await device.publish_many(
                "thermo", [{"celsius": c, "time": c} for c in range(50)]
            )
            await device.disconnect()
            await device.publish_many("thermo", [[c, c] for c in range(50, 60)])  # offline
            await device.connect()
            await device.flush(timeout=10)
            readings: dict[int, Reading] = {}  # at least once: a window in flight at the
            while len(readings) < 60:  # disconnect is sent again; q tells copies apart
                (message,) = await receive(monitor, 1)
                reading = verifier.verify(message.payload)
                readings.setdefault(reading.sequence, reading)
    assert sequences == list(range(50))  # the refused batch took no sequence number
    assert [(q, r.values[0]) for q, r in readings.items()] == [(c, c) for c in range(60)]
