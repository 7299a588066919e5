"""A sale-order world for the warehouse door's tests: chain, factory, broker, shadow service.

One :class:`SaleWorld` per test module (``sale_world`` fixture in ``conftest.py``): a
:class:`~pervasive.Platform` with the embedded chain, the embedded MQTT broker and the
shadow service; the sale-order factory; a seller and buyers. Every test makes its own
warehouse account, door (thing name) and orders, so no test depends on another's state.
``history[thing]`` records each stored change of that thing's shadow as
``(desired door, reported door)``, read from the shadow service itself.

For the CLI and crash tests, :func:`registered_door` leaves what ``pervasive device
warehouse register`` leaves (certificate, keystore account, gateway role) and
:class:`DoorProcess` runs ``run`` as its own process, fed receipt texts on stdin.

Imported by name (``tests/`` is on ``sys.path``, as for ``device_platform``) by the
unit, integration and fault tests of the door.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from pervasive import Platform
from pervasive.apps.salesorder import (
    Actuator,
    Door,
    ReleaseJournal,
    WarehouseDoor,
    render_png,
)
from pervasive.chain import ContractCall, Keystore, Ledger, Signer
from pervasive.config import Settings
from pervasive.contracts import SaleOrder, SaleOrderFactory
from pervasive.crypto import PrivateKey
from pervasive.devices import DeviceFolder
from pervasive.domain import SaleReceipt
from pervasive.gateway import Gateway, RoleBook, open_gateway_ledger, roles_file
from pervasive.messaging import MqttClient
from pervasive.shadow import ShadowRecord

PRICE = 5 * 10**18
PASSWORD = "test password"


@dataclass
class SaleWorld:
    platform: Platform
    ledger: Ledger
    factory: SaleOrderFactory
    seller: Signer
    buyer: Signer
    other_buyer: Signer
    root: Path
    artifacts: Path
    gateway: Gateway | None = None
    """When set, doors reach the chain through it (and are given the warehouse role)."""
    history: dict[str, list[tuple[object, object]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    def thing(self) -> str:
        """A fresh door name (its own shadow, certificate and rate limit)."""
        return f"warehouse-{next(self._numbers)}"

    def record(self, record: ShadowRecord) -> None:
        """The shadow service's listener: each stored change of a door's shadow."""
        self.history[record.key.thing].append(
            (record.desired.get("door"), record.reported.get("door"))
        )

    async def account(self, wei: int = 10**18) -> Signer:
        """A fresh warehouse account, funded with ``wei`` (0: none)."""
        signer = Signer.generate()
        if wei:
            funding = ContractCall(to=signer.address, data=b"", value=wei)
            await self.ledger.transactor(self.ledger.dev_signer(0)).transact(funding)
        return signer

    async def order(self, warehouse: str, *, buyer: Signer | None = None) -> SaleOrder:
        """A new order released at ``warehouse``, bought by ``buyer`` (unless ``None``)."""
        factory = self.factory.with_signer(self.seller)
        order = await factory.create("Tesla", "alpha", 2019, PRICE, "4AA6", warehouse)
        if buyer is not None:
            await order.with_signer(buyer).buy()
        return order

    def receipt(self, order: str, buyer: Signer, *, chain_id: int | None = None) -> SaleReceipt:
        """The buyer's signed receipt of ``order``."""
        key = PrivateKey(buyer.private_key)
        return SaleReceipt.sign(key, chain_id or self.ledger.chain_id, order, buyer.address)

    def receipt_png(self, order: str, buyer: Signer) -> bytes:
        """The receipt as the web app shows it: a QR code PNG."""
        return render_png(self.receipt(order, buyer).encode())

    @contextlib.asynccontextmanager
    async def door(
        self,
        account: Signer,
        *,
        thing: str | None = None,
        journal: Path | None = None,
        hold: float = 0.05,
        timeout: float = 10.0,
        actuator: Actuator | None = None,
        gateway: bool = True,
    ) -> AsyncIterator[WarehouseDoor]:
        """A started door of ``account``.

        Through :attr:`gateway` when the world has one (the door's certificate given the
        warehouse role), else on the platform's ledger with the factory asked first
        (``gateway=False``: not even that, as a door behind no gateway).
        """
        thing = thing or self.thing()
        broker = await self.platform.broker()
        options = self.platform.client_options(thing)
        await broker.settle()
        async with contextlib.AsyncExitStack() as stack:
            ledger, is_order = self.ledger, self.factory.is_order if gateway else None
            if self.gateway is not None:
                RoleBook.open(roles_file(self.platform.settings.home)).assign(thing, "warehouse")
                ledger = await open_gateway_ledger(
                    self.gateway.url, options.credentials, self.platform.settings
                )
                stack.push_async_callback(ledger.close)
                is_order = None
            journal_file = ReleaseJournal.open(journal or self.root / f"{thing}-releases.sqlite")
            stack.callback(journal_file.close)
            warehouse = WarehouseDoor(
                thing, ledger, account, journal_file, door=Door(actuator), hold=hold,
                timeout=timeout, is_order=is_order, artifacts=self.artifacts,
            )  # fmt: skip
            client = await stack.enter_async_context(MqttClient(options))
            await warehouse.start(client)
            stack.push_async_callback(warehouse.stop)
            yield warehouse


@contextlib.asynccontextmanager
async def sale_world(
    root: Path, settings: Settings | None = None, *, gateway: bool = False, shadow: bool = True
) -> AsyncIterator[SaleWorld]:
    """Platform (embedded chain and broker unless ``settings`` say otherwise) and factory.

    ``gateway``: also the devices' JSON-RPC gateway in front of the ledger, through
    which every door of the world reaches the chain. ``shadow=False``: no shadow service
    (a test runs its own, to stop and start it).
    """
    settings = settings or Settings(home=root, broker="embedded", password=PASSWORD)
    async with Platform(settings, persist=False) as platform:
        await platform.start("ledger", "broker", *(("shadow",) if shadow else ()))
        ledger = await platform.ledger()
        factory = await platform.sale_orders()
        world = SaleWorld(
            platform, ledger, factory, ledger.dev_signer(1), ledger.dev_signer(2),
            ledger.dev_signer(3), root, settings.path("artifacts"),
        )  # fmt: skip
        if shadow:
            (await platform.shadow()).service.add_listener(world.record)
        if not gateway:
            yield world
            return
        roles = RoleBook.open(roles_file(settings.home))
        world.gateway = await Gateway.start(
            ledger, platform.authority, settings.gateway, roles=roles, orders=factory.is_order
        )
        try:
            yield world
        finally:
            await world.gateway.close()


# -- a door as its own process (the CLI), for the fault and CLI tests ----------------
DOOR_COMMAND = (sys.executable, "-m", "pervasive", "device", "warehouse")
"""``pervasive device warehouse`` as its own process (settings from ``PERVASIVE_*``)."""


def door_environment(world: SaleWorld) -> dict[str, str]:
    """The environment of a door process: the world's data directory and password."""
    return {**os.environ, "PERVASIVE_HOME": str(world.platform.settings.home),
            "PERVASIVE_PASSWORD": PASSWORD, "COLUMNS": "400"}  # fmt: skip


async def door_options(world: SaleWorld) -> list[str]:
    """``--gateway`` and ``--mqtt-port`` of the world, for a door process."""
    assert world.gateway is not None
    port = (await world.platform.broker()).port
    return ["--gateway", world.gateway.url, "--mqtt-port", str(port)]


class DoorProcess:
    """``pervasive device warehouse run <thing>`` as a child process fed on stdin."""

    def __init__(self, world: SaleWorld, thing: str, *options: str) -> None:
        self.world, self.thing, self.options = world, thing, options
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        """Everything the door printed so far."""
        self._matched: set[int] = set()

    async def start(self) -> None:
        world = self.world
        self.process = await asyncio.create_subprocess_exec(
            *DOOR_COMMAND, "run", self.thing, *await door_options(world), "--hold", "0.2",
            *self.options, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=door_environment(world), cwd=world.root,
        )  # fmt: skip
        await self.expect(r"ready")

    async def scan(self, text: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        await self.process.stdin.drain()

    async def expect(self, pattern: str, timeout: float = 30.0) -> str:
        """The first output line not matched before that matches ``pattern``."""
        assert self.process is not None and self.process.stdout is not None
        for index, line in enumerate(self.lines):
            if index not in self._matched and re.search(pattern, line):
                self._matched.add(index)
                return line
        try:
            async with asyncio.timeout(timeout):
                return await self._read_until(pattern)
        except TimeoutError:
            raise AssertionError(f"no line like {pattern!r}; the door said: {self.lines}") from None

    async def _read_until(self, pattern: str) -> str:
        assert self.process is not None and self.process.stdout is not None
        while True:
            raw = await self.process.stdout.readline()
            if not raw:
                raise AssertionError(f"the door exited; it said: {self.lines}")
            self.lines.append(raw.decode().rstrip())
            if re.search(pattern, self.lines[-1]):
                self._matched.add(len(self.lines) - 1)
                return self.lines[-1]

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        assert self.process.stdin is not None
        self.process.stdin.close()  # the end of stdin stops the door
        try:
            async with asyncio.timeout(15):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@contextlib.asynccontextmanager
async def door_process(world: SaleWorld, thing: str, *options: str) -> AsyncIterator[DoorProcess]:
    """A running door process of ``thing``, stopped (stdin closed) afterwards."""
    door = DoorProcess(world, thing, *options)
    try:
        await door.start()
        yield door
    finally:
        await door.stop()


async def registered_door(world: SaleWorld) -> tuple[str, Signer]:
    """What `pervasive device warehouse register` leaves: certificate, account, role."""
    thing = world.thing()
    account = await world.account()
    ca = world.platform.authority
    folder = DeviceFolder(world.platform.settings.path("devices", thing))
    ca.write_credentials(ca.issue_device(thing), folder.path)
    Keystore(world.platform.settings.path("keystore"), kdf_iterations=2).store(
        f"warehouse-{thing}", account, PASSWORD
    )
    RoleBook.open(roles_file(world.platform.settings.home)).assign(thing, "warehouse")
    await (await world.platform.broker()).settle()
    return thing, account
