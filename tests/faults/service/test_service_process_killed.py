"""``pervasive service run`` killed (SIGKILL) while a device publishes: every reading once.

The service is a real process of the ``pervasive`` command on an anvil node; the broker
(embedded amqtt in the test process, or mosquitto) and the device (its durable outbox)
live in the test. The device publishes a stream of signed readings; the service is
killed in the middle of it, readings keep coming while it is down, and it is started
again on the same data directory. The service acknowledges a reading (PUBACK) only
after its inbox transaction commits, on a persistent session: what the dead process had
received but not stored, and what came while it was down, the broker delivers to the
new one. The contract (``runtime_sample/deliveries.vy``) counts every application of a
(device, sequence): ``total`` shows a loss, ``duplicates`` a double application.

Needs ``pervasive service run`` to connect with ``ClientOptions(manual_ack=True)``:
acknowledged on arrival, the readings the process held unstored are lost (seen: 59 of
60 applied when the PUBACK leaves before the commit), and a clean session loses all
those published while it is down. A second test checks in-process that the runtime
acknowledges every message it takes, a refused one too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pervasive.chain import (
    AnvilNode,
    ContractCall,
    Keystore,
    Ledger,
    Signer,
    anvil_dev_keys,
    find_anvil,
)
from pervasive.config import Settings
from pervasive.contracts import Contract, Registry
from pervasive.devices import Device, DeviceFolder, SensorSpec
from pervasive.domain import SensorField
from pervasive.messaging import MqttClient, find_mosquitto
from pervasive.platform import Platform
from pervasive.service.deployment import ServiceBook, ServiceDeployment, deploy_service
from pervasive.service.runtime import ServiceRuntime, service_folder
from pervasive.service.spec import load_spec
from pervasive_child import PervasiveChild

pytestmark = [pytest.mark.anvil, pytest.mark.slow, pytest.mark.timeout(180)]

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "integration" / "service" / "runtime_sample"
PASSWORD = "service process test"
NAME = "kill-test"
DELIVERY = SensorSpec("delivery", "delivery", (("shipment", "string"), ("time", "uint64")))
READINGS = 60
BURST = 10
SPEC = f"""
name = "{NAME}"
version = 1
description = "Delivery readings, applied once across a killed service process"

[contract]
source = "deliveries.vy"
constructor = ["$operator"]

[[mqtt]]
topic = "pervasive/devices/+/sensors/delivery"
function = "confirm_delivery"
args = ["shipment", "$device", "$sequence"]
"""


@dataclass
class World(PervasiveChild):
    home: Path
    spec: Path
    env: dict[str, str]
    chain_url: str
    contract: Contract
    device: Device
    platform: Platform
    operator: Signer
    deployment: ServiceDeployment

    def runtime(self) -> ServiceRuntime:
        """The service in the test's process (the ``run`` command builds the same)."""
        return ServiceRuntime(
            load_spec(self.spec), self.deployment, ledger=self.contract.ledger,
            operator=self.operator, authority=self.platform.authority, home=self.home,
            settings=self.platform.settings,
            declarations={"container-1": {"delivery": self.device.declaration("delivery")}},
        )  # fmt: skip

    log_name = "service.log"

    def arguments(self) -> list[str]:
        return ["--backend", "rpc", "--rpc-url", self.chain_url,
                "service", "run", str(self.spec), "--account", "operator"]  # fmt: skip

    async def total(self) -> int:
        return int(await self.contract.call("total"))

    def stored(self) -> int:
        """Calls the service's inbox has committed (read beside the running process)."""
        inbox = service_folder(self.home, NAME) / "inbox.sqlite"
        if not inbox.exists():
            return 0
        with contextlib.closing(sqlite3.connect(f"file:{inbox}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM calls").fetchone()[0])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    running: list[subprocess.Popen[bytes]] = []
    yield running
    for process in running:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=15)


@pytest.fixture(params=["embedded", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, artifacts: Path
) -> AsyncIterator[World]:
    if request.param == "mosquitto" and find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    chain = AnvilNode(binary=find_anvil(start=HERE))
    await chain.start()
    home = tmp_path / "home"
    shutil.copytree(artifacts, home / "artifacts")  # compiled once, read by the process too
    settings = Settings(
        home=home, backend="rpc", rpc_url=chain.url, broker=request.param, password=PASSWORD
    )  # type: ignore[arg-type]
    folder = tmp_path / "spec"
    folder.mkdir()
    shutil.copy(SAMPLE / "deliveries.vy", folder)
    (folder / "service.toml").write_text(SPEC)
    try:
        async with Platform(settings) as platform:
            broker = await platform.broker()
            ledger: Ledger = await platform.ledger()
            bank = Signer.from_key(anvil_dev_keys()[0])
            keystore = Keystore(home / "keystore", kdf_iterations=2)
            operator = keystore.store("operator", Signer.generate(), PASSWORD)  # --account
            await ledger.transactor(bank).transact(
                ContractCall(to=operator.address, data=b"", value=10**19, gas=21_000)
            )
            devices = tmp_path / "devices" / "container-1"
            ca = platform.authority
            ca.write_credentials(ca.issue_device("container-1"), devices)
            ca.client_credentials(f"svc:service.{NAME}", home / "mqtt")
            await broker.settle()
            device = Device("container-1", DeviceFolder(devices), host="127.0.0.1",
                            port=broker.port, sensors=[DELIVERY])  # fmt: skip
            registry = await Registry.open(
                ledger, bank, artifacts=home / "artifacts", book=platform.deployments()
            )
            declaration = device.declaration("delivery")
            fields = [SensorField.parse(f"{n}:{t}") for n, t in DELIVERY.fields]
            await registry.add_sensor(
                "container-1.delivery", declaration.public_key.to_bytes(),
                declaration.sensor_type, fields,
            )  # fmt: skip
            book = ServiceBook.open(home / "services.sqlite")
            deployment = await deploy_service(
                ledger, operator, load_spec(folder / "service.toml"), book=book,
                artifacts=home / "artifacts", oracle=None,
            )  # fmt: skip
            book.close()
            env = {**os.environ, "PERVASIVE_PASSWORD": PASSWORD,
                   "PERVASIVE_MQTT_PORT": str(broker.port)}  # fmt: skip
            try:
                yield World(
                    home, folder / "service.toml", env, chain.url,
                    Contract(ledger, deployment.address, deployment.abi), device,
                    platform, operator, deployment,
                )  # fmt: skip
            finally:
                await device.close()
    finally:
        await chain.stop()


async def test_a_killed_service_process_applies_every_reading_exactly_once(
    world: World, processes: list[subprocess.Popen[bytes]]
) -> None:
    processes.append(world.start())
    await world.ready(processes[-1], 1)

    async def publish() -> None:
        for index in range(READINGS):
            await world.device.publish("delivery", {"shipment": "ship-1", "time": 1000 + index})
            if index % BURST == BURST - 1:
                await asyncio.sleep(0.3)  # a stream of bursts (~2 s)

    async with world.device:
        publisher = asyncio.create_task(publish())
        async with asyncio.timeout(60):  # killed inside the second burst: some of it is
            while world.stored() < BURST + BURST // 3:  # stored, the rest received or on
                await asyncio.sleep(0.001)  # its way, none of it acknowledged unstored
        os.kill(processes[-1].pid, signal.SIGKILL)
        assert processes[-1].wait(timeout=10) == -signal.SIGKILL
        assert world.stored() < READINGS and not publisher.done()  # killed mid-stream

        await asyncio.sleep(0.5)  # readings keep coming while no service runs
        processes.append(world.start())
        await world.ready(processes[-1], 2)
        await publisher
        await world.device.flush(timeout=30)
        try:
            async with asyncio.timeout(60):
                while await world.total() < READINGS:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            pytest.fail(f"{await world.total()} of {READINGS} applied\n{world.log()[-4000:]}")
        await asyncio.sleep(1.0)  # time for a late second application (there is none)
        assert await world.total() == READINGS
        assert await world.contract.call("duplicates") == 0
    processes[-1].send_signal(signal.SIGINT)
    assert processes[-1].wait(timeout=20) == 0
    assert "Traceback" not in world.log()


async def test_the_runtime_acknowledges_each_reading_once_stored_or_refused(world: World) -> None:
    options = world.platform.client_options(f"svc:service.{NAME}", manual_ack=True)
    async with MqttClient(options) as connection, world.device as device:
        runtime = world.runtime()
        ready = asyncio.Event()
        task = asyncio.create_task(runtime.run(connection, ready=ready))
        await ready.wait()
        _, wire = device.sign("delivery", {"shipment": "ship-1", "time": 1})
        await device.publish_signed("delivery", wire)
        await device.publish_signed("delivery", wire)  # the same reading again: refused
        await device.publish("delivery", {"shipment": "ship-1", "time": 2})
        await device.flush(timeout=10)
        async with asyncio.timeout(10):
            while runtime.counters["accepted"] + runtime.counters["replay"] < 3:
                await asyncio.sleep(0.01)
        assert (runtime.counters["accepted"], runtime.counters["replay"]) == (2, 1)
        assert connection.unacknowledged == 0  # all three PUBACKs sent, the refusal's too
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
