"""Real-component harness of the oracle committee (paper 001, section 4).

``open_world``: a chain (embedded py-evm or anvil), the platform's embedded MQTT broker
with the CA's identities, a local ``ShipmentCost?device=VerticalPump`` HTTP service
(paper 001's example source), the :class:`OracleHub` with 3 oracles and t = 2, the test
consumer contract ``shipping_consumer.vy``, the sensor registry (DEVICE queries: devices
registered by a test publish signed readings, :class:`Pump`) and three
:class:`OracleNode`\\ s running as asyncio tasks that follow the registry's sensors. Node
3's fetcher can be told to lie (:class:`LyingFetcher`).

On the embedded chain a block's time is when the block before it was mined, so an idle
chain stands still; a real chain makes blocks all the time, and the world does the same
(an empty block every second) so that deadlines pass.

Helpers (also loaded by ``tests/faults/oracle``): ``ask``, ``wait_state``, ``hub_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import secrets
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from pervasive.chain import ContractCall, Ledger
from pervasive.config import OracleSettings, Settings
from pervasive.contracts import Registry
from pervasive.contracts.compiler import compile_source
from pervasive.contracts.contract import Contract
from pervasive.contracts.deployments import deploy
from pervasive.contracts.oracle_hub import (
    HubEvent,
    OracleHub,
    QueryKind,
    QueryRequested,
    QueryState,
)
from pervasive.crypto import PrivateKey, keccak256
from pervasive.devices import Declarations, SensorSpec, registered_declarations, sensor_topic
from pervasive.devices import sign_reading as sign
from pervasive.domain import SensorField
from pervasive.messaging import MqttClient
from pervasive.oracle import Observation, OracleNode, SourceFetcher
from pervasive.platform import Platform

sys.modules.setdefault("oracle_harness", sys.modules[__name__])

HERE = Path(__file__).resolve().parent
COSTS = {"VerticalPump": 1234, "Compressor": 987}
HUB_TIMEOUT = 3
"""Seconds an attempt may take (short: the timeout test waits it out twice)."""
MAX_ATTEMPTS = 2
NODE_SETTINGS = OracleSettings(takeover_after=0.5, poll_interval=0.02, fetch_timeout=2.0)
FLOW = SensorSpec("flow", "flow", (("litres", "uint64"), ("site", "string")))
"""The sensor of the test devices: a flow meter counting litres at a site."""


def cost_body(device: str) -> bytes:
    """The exact bytes the service answers for ``device``."""
    return json.dumps({"device": device, "cost": COSTS[device]}, separators=(",", ":")).encode()


class ShipmentCostService:
    """The device-category cost service of paper 001's Shipping contract (Fig. 1)."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _cost(self, request: web.Request) -> web.Response:
        self.requests[request.path] += 1
        device = request.query.get("device", "")
        if device not in COSTS:
            return web.json_response({"error": f"unknown device {device!r}"}, status=404)
        return web.Response(body=cost_body(device), content_type="application/json")

    async def _dead(self, request: web.Request) -> web.Response:
        self.requests[request.path] += 1
        return web.Response(status=503, text="down for maintenance")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ShipmentCost", self._cost)
        app.router.add_get("/dead", self._dead)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class LyingFetcher(SourceFetcher):
    """A Byzantine node's fetcher: when ``lying``, it reports 1 more than the source says."""

    lying = False

    async def observe(self, kind: int, source: str, path: str) -> Observation:
        seen = await super().observe(kind, source, path)
        if not self.lying:
            return seen
        return dataclasses.replace(seen, value=seen.value + 1, digest=keccak256(b"a lie"))


@dataclass
class Pump:
    """A device registered in the world's registry, publishing signed ``flow`` readings."""

    name: str
    key: PrivateKey
    client: MqttClient

    @property
    def source(self) -> str:
        """The DEVICE query source: ``<device id>/flow``."""
        return f"{self.name}/flow"

    def reading(self, q: int, litres: int, key: PrivateKey | None = None) -> bytes:
        """The signed wire bytes of reading ``q`` (``key``: a forger's instead)."""
        declaration = FLOW.declaration((key or self.key).public_key)
        return sign(key or self.key, declaration, q, {"litres": litres, "site": "dock-4"})

    async def publish(self, wire: bytes) -> None:
        """Publish on the device's own sensor topic (QoS 1, acknowledged)."""
        await self.client.publish(sensor_topic(self.name, "flow"), wire, qos=1)


@dataclass
class OracleWorld:
    """Everything a test needs; node ``i`` (1-based) is ``nodes[i - 1]``."""

    platform: Platform
    ledger: Ledger
    hub: OracleHub
    consumer: Contract
    keys: list[PrivateKey]
    service: ShipmentCostService
    root: Path
    registry: Registry
    nodes: list[OracleNode] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    clients: list[MqttClient] = field(default_factory=list)
    device_clients: list[MqttClient] = field(default_factory=list)

    @property
    def cost_url(self) -> str:
        """paper 001's source: ``.../ShipmentCost?device=VerticalPump``."""
        return f"{self.service.url}/ShipmentCost?device=VerticalPump"

    async def declarations(self) -> Declarations:
        """What the nodes read: the registry's sensors (as ``pervasive oracle run`` does)."""
        return registered_declarations(await self.registry.list_sensors())

    async def pump(self) -> Pump:
        """A new device with its ``flow`` sensor registered on-chain and its MQTT session."""
        name = f"pump-{secrets.token_hex(3)}"
        key = PrivateKey(secrets.token_bytes(32))
        fields = [SensorField.parse(f"{n}:{t}") for n, t in FLOW.fields]
        await self.registry.add_sensor(f"{name}.flow", key.public_key.to_bytes(), "flow", fields)
        client = MqttClient(self.platform.client_options(name))
        await client.connect()
        self.device_clients.append(client)
        return Pump(name, key, client)

    def fetcher(self) -> LyingFetcher:
        """A fetcher allowed the cost service only."""
        return LyingFetcher(
            allow=[f"{self.service.url}/ShipmentCost", f"{self.service.url}/dead"],
            fetch_timeout=NODE_SETTINGS.fetch_timeout,
            max_response_bytes=NODE_SETTINGS.max_response_bytes,
        )

    async def start_node(self, index: int) -> OracleNode:
        """Start node ``index`` (1-based) on its SQLite file; returns once it follows the hub."""
        key = self.keys[index - 1]
        client = MqttClient(
            # a restarted node connects as a new identity: the client id is the identity,
            # and the stopped node's client must not take its session back
            self.platform.client_options(f"svc:oracle.{index}-{secrets.token_hex(3)}")
        )
        await client.connect()
        self.clients.append(client)
        node = OracleNode(
            key=key, hub=self.hub.with_signer(_signer(key)), connection=client,
            database=self.root / f"oracle-{index}.sqlite", fetcher=self.fetcher(),
            settings=NODE_SETTINGS, declarations=self.declarations, reread_after=0.2,
        )  # fmt: skip
        ready = asyncio.Event()
        task = asyncio.create_task(node.run(ready=ready), name=f"oracle-node-{index}")
        await asyncio.wait(
            [task, asyncio.ensure_future(ready.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        if task.done():
            task.result()
        if len(self.nodes) >= index:
            self.nodes[index - 1], self.tasks[index - 1] = node, task
        else:
            self.nodes.append(node)
            self.tasks.append(task)
        return node

    async def stop_node(self, index: int) -> None:
        """Cancel node ``index``'s task (its SQLite file stays) and close its MQTT client."""
        task = self.tasks[index - 1]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        client = self.nodes[index - 1].connection
        assert isinstance(client, MqttClient)
        await client.close()


def _signer(key: PrivateKey) -> Any:
    from pervasive.chain import Signer

    return Signer.from_key(key.secret)


async def _block_clock(ledger: Ledger) -> None:
    while True:
        # one block a second at most: each block is at least a second after its parent
        await asyncio.sleep(1.05)
        await ledger.mine(1)


@contextlib.asynccontextmanager
async def open_world(root: Path, backend: str, artifacts: Path) -> AsyncIterator[OracleWorld]:
    """A whole oracle world (see the module docstring), torn down on exit."""
    settings = Settings(home=root, backend=backend, broker="embedded", password="pw")
    async with contextlib.AsyncExitStack() as stack:
        platform = await stack.enter_async_context(Platform(settings, persist=False))
        ledger = await platform.ledger()
        await platform.broker()
        service = ShipmentCostService()
        await service.start()
        stack.push_async_callback(service.stop)
        admin = ledger.dev_signer(0)
        keys = [PrivateKey(secrets.token_bytes(32)) for _ in range(3)]
        for key in keys:
            await ledger.transactor(admin).transact(
                ContractCall(to=key.address, data=b"", value=10**18, gas=21_000)
            )
        hub = await OracleHub.open(
            ledger, admin, oracles=[k.address for k in keys], threshold=2,
            timeout=HUB_TIMEOUT, max_attempts=MAX_ATTEMPTS, artifacts=artifacts,
        )  # fmt: skip
        consumer = await deploy_consumer(ledger, hub)
        registry = await Registry.open(ledger, admin, artifacts=artifacts)
        world = OracleWorld(platform, ledger, hub, consumer, keys, service, root, registry)
        if backend == "embedded":
            clock = asyncio.create_task(_block_clock(ledger))
            stack.callback(clock.cancel)
        try:
            for index in (1, 2, 3):
                await world.start_node(index)
            yield world
        finally:
            for index in range(1, len(world.tasks) + 1):
                await world.stop_node(index)
            for client in world.device_clients:
                await client.close()


async def deploy_consumer(ledger: Ledger, hub: OracleHub) -> Contract:
    """The test consumer (a reduced Shipping contract) bound to ``hub``."""
    artifact = compile_source("shipping_consumer", (HERE / "shipping_consumer.vy").read_text())
    deployment = await deploy(ledger, ledger.dev_signer(0), artifact, hub.address)
    return Contract(ledger, deployment.address, artifact.abi)


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)],
)
async def oracle_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> AsyncIterator[OracleWorld]:
    """The world on each backend, shared by a module's tests."""
    backend = str(request.param)
    async with open_world(tmp_path_factory.mktemp(f"oracle-{backend}"), backend, artifacts) as w:
        yield w


# ---------------------------------------------------------------------------- helpers


async def ask(
    world: OracleWorld, source: str, path: str = "cost", kind: QueryKind = QueryKind.URL
) -> int:
    """The consumer asks the hub (a URL query by default); returns the query id."""
    receipt = await world.consumer.transact(
        world.ledger.dev_signer(0), "ask", int(kind), source, path
    )
    (asked,) = [e for e in world.hub.receipt_events(receipt) if isinstance(e, QueryRequested)]
    return asked.query_id


async def wait_state(
    world: OracleWorld, query_id: int, state: QueryState, timeout: float = 20
) -> float:
    """Until the hub has ``query_id`` in ``state``; returns the seconds it took."""
    started = time.perf_counter()
    last = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                last = await world.hub.query_status(query_id)
                if last.state is state:
                    return time.perf_counter() - started
                await asyncio.sleep(0.05)
    except TimeoutError:
        refusals = [dict(n.refusals) for n in world.nodes]
        raise AssertionError(
            f"query {query_id} never reached {state.name}: last {last}; refusals {refusals}"
        ) from None


async def hub_events(world: OracleWorld, query_id: int) -> list[HubEvent]:
    """Every hub event about ``query_id``, in chain order."""
    return [e for e in await world.hub.events() if getattr(e, "query_id", None) == query_id]
