"""A pervasive contract running as a service: devices' readings, REST calls, a trigger and
events, end to end on the embedded chain and broker, and on anvil with mosquitto.

The service is ``runtime_sample/deliveries.toml``: a reading on a device's ``delivery``
sensor calls ``confirm_delivery(shipment, $device, $sequence)``; a device POSTs notes
and GETs a view over HTTPS with its certificate; a co-location of container and
retailer pays once per episode; ``Delivered`` events leave as CloudEvents on MQTT.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pervasive import Platform
from pervasive.chain import Ledger
from pervasive.config import Settings
from pervasive.contracts import Contract
from pervasive.devices import Device, DeviceFolder, SensorSpec
from pervasive.devices.simulator import LOCATION_SENSOR
from pervasive.messaging import ClientCredentials, MqttClient, MqttMessage, find_mosquitto
from pervasive.pki import CertificateAuthority
from pervasive.service.deployment import ServiceBook, ServiceDeployment, deploy_service
from pervasive.service.inbox import CallStatus
from pervasive.service.runtime import ServiceRuntime
from pervasive.service.spec import ServiceSpec, load_spec

SAMPLE = Path(__file__).parent / "runtime_sample" / "deliveries.toml"
DELIVERY = SensorSpec("delivery", "delivery", (("shipment", "string"), ("time", "uint64")))


async def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@dataclass
class World:
    platform: Platform
    settings: Settings
    ledger: Ledger
    ca: CertificateAuthority
    port: int
    root: Path
    spec: ServiceSpec
    deployment: ServiceDeployment
    contract: Contract
    devices: dict[str, Device] = field(default_factory=dict)

    async def device(self, name: str) -> Device:
        if name not in self.devices:
            path = self.root / "devices" / name
            self.ca.write_credentials(self.ca.issue_device(name), path)
            await (await self.platform.broker()).settle()
            self.devices[name] = Device(
                name, DeviceFolder(path), host="127.0.0.1", port=self.port,
                sensors=[DELIVERY, LOCATION_SENSOR],
            )  # fmt: skip
        return self.devices[name]

    def credentials(self, name: str) -> ClientCredentials:
        return DeviceFolder(self.root / "devices" / name).credentials()

    def runtime(self) -> ServiceRuntime:
        declarations = {
            name: {s: d.declaration(s) for s in ("delivery", "location")}
            for name, d in self.devices.items()
        }
        return ServiceRuntime(
            self.spec, self.deployment, ledger=self.ledger, operator=self.ledger.dev_signer(0),
            authority=self.ca, home=self.settings.home, settings=self.settings,
            declarations=declarations,
        )  # fmt: skip

    def client(self, identity: str) -> MqttClient:
        # the service acknowledges a reading once its inbox holds it (as `service run` does)
        manual_ack = identity.startswith("svc:service")
        return MqttClient(self.platform.client_options(identity, manual_ack=manual_ack))

    async def view(self, name: str, *args: Any) -> Any:
        return await self.contract.call(name, *args)


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("anvil", marks=[pytest.mark.anvil, pytest.mark.mosquitto]),
    ]
)
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, artifacts: Path
) -> AsyncIterator[World]:
    if request.param == "anvil":
        if find_mosquitto() is None:
            pytest.skip("mosquitto is not installed")
        settings = Settings(home=tmp_path, backend="anvil", broker="mosquitto", password="pw")
    else:
        settings = Settings(home=tmp_path, broker="embedded", password="pw")
    async with Platform(settings, persist=False) as platform:
        ledger = await platform.ledger()
        broker = await platform.broker()
        spec = load_spec(SAMPLE)
        book = ServiceBook.open(":memory:")
        deployment = await deploy_service(
            ledger, ledger.dev_signer(0), spec, book=book, artifacts=artifacts, oracle=None
        )
        book.close()
        yield World(
            platform, settings, ledger, platform.authority, broker.port, tmp_path, spec,
            deployment, Contract(ledger, deployment.address, deployment.abi),
        )  # fmt: skip


@pytest.fixture
async def running(world: World) -> AsyncIterator[tuple[World, ServiceRuntime]]:
    """The service running with container-1 and retailer-1 declared."""
    for name in ("container-1", "retailer-1"):
        await world.device(name)
    runtime = world.runtime()
    ready = asyncio.Event()
    async with world.client("svc:service") as connection:
        task = asyncio.create_task(runtime.run(connection, ready=ready))
        await asyncio.wait_for(ready.wait(), 20)
        try:
            yield world, runtime
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    for device in world.devices.values():
        await device.close()


def https(credentials: ClientCredentials | None, ca_file: Path) -> aiohttp.ClientSession:
    if credentials is None:
        context = ssl.create_default_context(cafile=str(ca_file))
    else:
        context = credentials.ssl_context()
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=1))


async def request(
    client: aiohttp.ClientSession, method: str, url: str, body: bytes = b""
) -> tuple[int, Any]:
    async with client.request(method, url, data=body) as answer:
        raw = await answer.read()
        assert b"\n" not in raw.strip()  # one line
        return answer.status, json.loads(raw)


async def test_readings_call_the_function_once_each_and_events_leave_as_cloudevents(
    running: tuple[World, ServiceRuntime],
) -> None:
    world, runtime = running
    async with world.client("svc:events") as events:
        await events.subscribe("pervasive/events/#", qos=1)
        async with await world.device("container-1") as container:
            for shipment in ("ship-1", "ship-1", "ship-2"):
                await container.publish("delivery", {"shipment": shipment, "time": 1000})
            await container.publish("delivery", {"shipment": "refused", "time": 1001})
            await wait_for(lambda: runtime.counters["applied"] + runtime.counters["reverted"] == 4)
        received: list[MqttMessage] = []
        stream = events.messages()
        async with asyncio.timeout(20):
            while len(received) < 3:
                received.append(await anext(stream))
    assert (await world.view("deliveries", "ship-1"), await world.view("total")) == (2, 3)
    assert await world.view("duplicates") == 0
    assert runtime.counters["accepted"] == 4 and runtime.counters["reverted"] == 1
    assert runtime.inbox is not None
    [refused] = runtime.inbox.calls(CallStatus.REVERTED)
    assert refused.error == "refused shipment"
    documents = [json.loads(m.payload) for m in received]
    assert {d["type"] for d in documents} == {"dev.pervasive.test.delivered"}
    assert [d["data"]["sequence"] for d in documents] == [0, 1, 2]
    assert [d["subject"] for d in documents] == ["ship-1", "ship-1", "ship-2"]
    assert documents[0]["dataschema"] == "urn:pervasive:schema:test:delivered:1"
    assert documents[0]["source"].startswith(f"eip155:{world.ledger.chain_id}:")


async def test_rest_post_get_and_refusals_without_valid_certificates(
    running: tuple[World, ServiceRuntime], tmp_path: Path
) -> None:
    world, runtime = running
    url = runtime.rest_url
    assert url is not None and url.startswith("https://127.0.0.1:")
    ca_file = world.ca.ca_file
    async with https(world.credentials("container-1"), ca_file) as client:
        body = json.dumps({"amount": 7}).encode()
        status, answer = await request(client, "POST", f"{url}/shipments/ship-9/notes", body)
        assert status == 202 and answer["status"] == "pending"
        href = f"{url}{answer['href']}"

        async def state() -> Any:
            return (await request(client, "GET", href))[1]

        async with asyncio.timeout(20):
            while (current := await state())["status"] != "done":
                await asyncio.sleep(0.05)
        assert current["transaction"].startswith("0x") and current["block"] > 0
        assert await world.view("notes", "ship-9") == 7
        status, answer = await request(client, "GET", f"{url}/shipments/ship-9")
        assert (status, answer["result"]) == (200, 0)

        status, answer = await request(client, "POST", f"{url}/shipments/ship-9/notes", b"[1]")
        assert (status, answer["reason"]) == (400, "bad_body")
        status, answer = await request(client, "POST", f"{url}/shipments/ship-9/notes", b"{}")
        assert status == 400 and "amount" in answer["error"]
        big = json.dumps({"amount": 1, "pad": "x" * 20_000}).encode()
        status, answer = await request(client, "POST", f"{url}/shipments/ship-9/notes", big)
        assert (status, answer["reason"]) == (413, "too_large")

    async with https(None, ca_file) as anonymous:
        status, answer = await request(anonymous, "GET", f"{url}/shipments/ship-9")
        assert (status, answer["reason"]) == (403, "no_certificate")

    foreign = CertificateAuthority.open(tmp_path / "foreign", "other")
    stranger = foreign.client_credentials("container-1", tmp_path / "strangers")
    foreign.close()
    mixed = ClientCredentials(ca_file, stranger.cert_file, stranger.key_file)
    async with https(mixed, ca_file) as client:
        with pytest.raises(aiohttp.ClientError):  # the handshake refuses another CA
            await request(client, "GET", f"{url}/shipments/ship-9")

    retailer = world.credentials("retailer-1")
    async with https(retailer, ca_file) as client:
        assert (await request(client, "GET", f"{url}/shipments/ship-9"))[0] == 200
        world.ca.revoke_identity("retailer-1")
        status, answer = await request(client, "GET", f"{url}/shipments/ship-9")
        assert (status, answer["reason"]) == (403, "revoked")  # on a connection opened before
    counters = runtime.counters
    assert (counters["no_certificate"], counters["revoked"], counters["too_large"]) == (1, 1, 1)
    assert (counters["bad_body"], counters["schema"], counters["rest_accepted"]) == (1, 1, 1)
    assert await world.view("notes", "ship-9") == 7


async def test_a_co_location_pays_once_per_episode(running: tuple[World, ServiceRuntime]) -> None:
    world, runtime = running
    async with (
        await world.device("container-1") as container,
        await world.device("retailer-1") as retailer,
    ):
        await container.publish("location", {"cell": "c-7", "time": 1000})
        await retailer.publish("location", {"cell": "c-3", "time": 1010})
        await retailer.publish("location", {"cell": "c-7", "time": 1020})  # arrival: episode 1
        await container.publish("location", {"cell": "c-7", "time": 1030})  # still there
        await wait_for(lambda: runtime.counters["accepted"] == 4)
        await wait_for(lambda: runtime.counters["applied"] == 1)
        await container.publish("location", {"cell": "c-8", "time": 1100})  # leaves
        await container.publish("location", {"cell": "c-7", "time": 1150})  # back: episode 2
        await wait_for(lambda: runtime.counters["applied"] == 2)
    assert await world.view("payments") == 2
    assert runtime.counters["fired"] == 2
