"""``Platform.interop()``: shadow changes and sale orders as CloudEvents, once, on MQTT and SSE."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import replace

from sse import read_cloudevents

from pervasive import Platform
from pervasive.config import Settings, WebSettings
from pervasive.interop import read_event
from pervasive.messaging import MqttClient

PASSWORD = "test password"
SHADOW = "dev.pervasive.shadow.changed"
CREATED = "dev.pervasive.salesorder.order-created"


async def test_a_shadow_change_and_a_sale_order_reach_the_stream_and_mqtt_once(
    tmp_settings: Settings,
) -> None:
    settings = replace(
        tmp_settings,
        broker="embedded",
        password=PASSWORD,
        web=WebSettings(port=0, dashboard_interval=0.1),
    )
    async with Platform(settings, shared=True) as platform:
        await platform.start("ledger", "broker", "shadow", "interop", "web")
        ledger = await platform.ledger()
        consumer_options = platform.client_options("svc:events.test")
        device_options = platform.client_options("lock-7")
        await (await platform.broker()).settle()
        async with MqttClient(consumer_options) as consumer, MqttClient(device_options) as device:
            await consumer.subscribe("pervasive/events/#", qos=1)
            update = {"state": {"reported": {"door": "closed"}}}
            await device.publish("$aws/things/lock-7/shadow/update", json.dumps(update).encode())
            factory = await platform.sale_orders()  # deployed now: found by the feed's look
            seller, warehouse = ledger.dev_signer(1), ledger.dev_signer(2)
            order = await factory.with_signer(seller).create(
                "Tesla", "alpha", 2019, 10**18, "4AA6", warehouse.address
            )

            received: list[tuple[str, bytes]] = []

            async def read(until: int) -> None:
                async for message in consumer.messages():
                    received.append((message.topic, message.payload))
                    if len(received) >= until:
                        return

            await asyncio.wait_for(read(2), 20)
            with contextlib.suppress(TimeoutError):  # nothing more: each event once
                await asyncio.wait_for(read(3), 0.5)
        events = [read_event(payload) for _, payload in received]
        assert sorted(e.get_type() for e in events) == [CREATED, SHADOW]
        by_type = {e.get_type(): (topic, e) for (topic, _), e in zip(received, events, strict=True)}
        topic, shadow = by_type[SHADOW]
        assert topic == f"pervasive/events/shadow/lock-7/{SHADOW}"
        assert shadow.get_source() == "urn:pervasive:shadow:lock-7"
        assert shadow.get_data()["reported"] == {"door": "closed"}
        topic, created = by_type[CREATED]
        assert topic == f"pervasive/events/{ledger.chain_id}/{factory.address}/{CREATED}"
        assert created.get_source() == f"eip155:{ledger.chain_id}:{factory.address}"
        assert created.get_data()["order"] == order.address

        # the web app streams the same log (every origin): each event once
        web = await platform.web()
        frames = await read_cloudevents(f"{web.url}/events/stream", 2)
        assert sorted((f.data["type"], f.data["id"]) for f in frames) == sorted(
            (e.get_type(), e.get_id()) for e in events
        )
        stored = (await platform.interop()).feed.store.after(0)
        assert [e.origin for e in stored] == ["platform", "platform"]
        assert (await platform.interop()).feed.counters["published"] == 2
