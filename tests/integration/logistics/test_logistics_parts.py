"""The case study's own parts on their own: the ShipmentCost service and the stream collector.

The cost service is a real HTTP server on loopback; the collector parses real
CloudEvents written by the interop layer.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx

from pervasive.apps.logistics import PRICES, CostService, EventCollector
from pervasive.interop.envelope import build_event, write_event

ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


async def test_the_cost_service_answers_the_paper_query_and_refuses_what_it_cannot_price() -> None:
    async with CostService() as service, httpx.AsyncClient() as client:
        answer = await client.get(service.query_url("VerticalPump"))
        assert answer.status_code == 200
        assert (
            answer.content
            == json.dumps({"device": "VerticalPump", "cost": PRICES["VerticalPump"]}).encode()
        )
        unknown = await client.get(service.query_url("Teapot"))
        assert unknown.status_code == 404
        assert "no price for device category 'Teapot'" in unknown.json()["error"]
        missing = await client.get(service.url + "/ShipmentCost")
        assert missing.status_code == 400
    assert service.answered == {"VerticalPump": 1}
    assert service.refusals == {"unknown_device": 1, "no_device": 1}


def test_the_collector_keeps_each_event_once_and_counts_what_is_no_cloudevent() -> None:
    collector = EventCollector({ADDRESS: "shipping"}, started=0.0)
    event = build_event(
        id="000000000016/000000/000003/f78df0e3",
        source=f"eip155:31337:{ADDRESS}",
        type="dev.pervasive.logistics.cost-quoted",
        time=dt.datetime.now(dt.UTC),
        data={"shipment": "ship-1", "cost": 5},
        dataschema="urn:pervasive:schema:logistics:cost-quoted:1",
        subject="ship-1",
    )
    topic = f"pervasive/events/31337/{ADDRESS}/dev.pervasive.logistics.cost-quoted"
    first = collector.accept(topic, write_event(event))
    assert first is not None
    assert (first.service, first.short_type, first.subject) == ("shipping", "cost-quoted", "ship-1")
    assert first.data == {"shipment": "ship-1", "cost": 5}
    assert collector.accept(topic, write_event(event)) is None  # QoS 1 redelivery
    assert collector.accept(topic, b"not a cloudevent") is None
    assert collector.accept(topic, b'{"specversion": "1.0"}') is None
    assert (collector.duplicates, collector.refusals["malformed"]) == (1, 2)
    assert [e.id for e in collector.in_chain_order()] == [first.id]
