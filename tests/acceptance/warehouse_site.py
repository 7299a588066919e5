"""The whole platform of paper 004 as an operator runs it, for the warehouse acceptance test.

One :class:`Site` per test: a :class:`~pervasive.Platform` that builds everything
(embedded chain, embedded broker, shadow service, the devices' gateway, the web app with
its live dashboard on a free port), started as ``pervasive up`` starts it (``shared``,
its run record written to ``<home>/run.json``) so that the CLI run beside it reaches the
same chain, CA and broker; and Debian's chromium driven by Playwright. People are
keystore accounts (funded from development account 0); the warehouse door is registered
with ``pervasive device warehouse register`` and runs in this process as a
:class:`WarehouseDoor` that reaches the chain only through the gateway, with its own
certificate.

Example::

    async with open_site(tmp_path / "home", artifacts) as site:
        seller = await site.person("seller")
        door = await site.register_door("door-1")
        async with site.door(door) as warehouse:
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright
from typer.testing import CliRunner

from pervasive import Platform
from pervasive.apps.salesorder import ReleaseJournal, WarehouseDoor
from pervasive.chain import ContractCall, Keystore, Ledger, Signer
from pervasive.cli import app as cli
from pervasive.config import Settings, WebSettings
from pervasive.contracts import SaleOrder, SaleOrderFactory
from pervasive.devices import DeviceFolder
from pervasive.gateway import open_gateway_ledger
from pervasive.messaging import ClientCredentials, MqttClient, await_admission
from pervasive.platform import run_file, write_run_record
from pervasive.shadow import ShadowRecord

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "platform password"
"""The platform's password (CA key, and the CLI's keystore accounts)."""


@dataclass(frozen=True)
class Person:
    """A keystore account someone signs in with."""

    name: str
    password: str = field(repr=False)
    signer: Signer

    @property
    def address(self) -> str:
        return self.signer.address


@dataclass(frozen=True)
class RegisteredDoor:
    """What ``pervasive device warehouse register <thing>`` left, and what it printed."""

    thing: str
    account: str
    """The keystore name of the door's warehouse account (``warehouse-<thing>``)."""
    signer: Signer
    credentials: ClientCredentials
    output: str


@dataclass
class Site:
    """The running platform, its URLs, the keystore and a chromium."""

    platform: Platform
    ledger: Ledger
    browser: Browser
    web: str
    """The web app's URL."""
    gateway: str
    """The devices' gateway URL."""
    keystore: Keystore
    factory: SaleOrderFactory
    shadows: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    """Per thing, each stored change of its shadow as ``(desired door, reported door)``."""

    @property
    def home(self) -> Path:
        return self.platform.settings.home

    def record(self, record: ShadowRecord) -> None:
        """The shadow service's listener."""
        door = (record.desired.get("door"), record.reported.get("door"))
        self.shadows.setdefault(record.key.thing, []).append(door)

    async def person(self, role: str, *, ether: int = 100) -> Person:
        """A keystore account ``role`` (cheap KDF: a test), funded from dev account 0."""
        signer = Signer.generate()
        person = Person(role, f"{role}'s own password", signer)
        self.keystore.store(role, signer, person.password)
        funding = ContractCall(to=signer.address, data=b"", value=ether * 10**18)
        await self.ledger.transactor(self.ledger.dev_signer(0)).transact(funding)
        return person

    def order(self, address: str) -> SaleOrder:
        """The sale order at ``address``, read on the platform's own ledger."""
        return self.factory.order(address)

    async def sell_and_buy(self, seller: Person, buyer: Person, warehouse: str, serial: str) -> str:
        """Another car listed and bought, without a browser; its order's address."""
        factory = self.factory.with_signer(seller.signer)
        order = await factory.create("Tesla", "alpha", 2019, 50 * 10**18, serial, warehouse)
        await order.with_signer(buyer.signer).buy()
        return order.address

    async def register_door(self, thing: str) -> RegisteredDoor:
        """``pervasive device warehouse register <thing>``, as an operator types it.

        The CLI runs beside the platform (a thread: it enters asyncio itself) and finds it
        through the run record: it borrows the embedded chain through the gateway as the
        operator to fund the door's account. The broker admits the new certificate at its
        next look, as it does for another process.
        """
        arguments = ["--home", str(self.home), "device", "warehouse", "register", thing]
        environment = {"PERVASIVE_PASSWORD": PASSWORD, "COLUMNS": "400"}
        result = await asyncio.to_thread(CliRunner().invoke, cli, arguments, env=environment)
        assert result.exit_code == 0, result.output
        await await_admission(self.home, thing)
        account = f"warehouse-{thing}"
        signer = await asyncio.to_thread(Keystore(self.home / "keystore").load, account, PASSWORD)
        credentials = DeviceFolder(self.home / "devices" / thing).credentials()
        return RegisteredDoor(thing, account, signer, credentials, result.output)

    @contextlib.asynccontextmanager
    async def door(self, door: RegisteredDoor, *, hold: float) -> AsyncIterator[WarehouseDoor]:
        """The door device, started: the gateway its only way to the chain, its own MQTT session."""
        settings = self.platform.settings
        async with contextlib.AsyncExitStack() as stack:
            ledger = await open_gateway_ledger(self.gateway, door.credentials, settings)
            stack.push_async_callback(ledger.close)
            journal = ReleaseJournal.open(self.home / "devices" / door.thing / "releases.sqlite")
            stack.callback(journal.close)
            warehouse = WarehouseDoor(door.thing, ledger, door.signer, journal, hold=hold,
                                      artifacts=settings.path("artifacts"))  # fmt: skip
            options = self.platform.client_options(door.thing, credentials=door.credentials)
            client = await stack.enter_async_context(MqttClient(options))
            await warehouse.start(client)
            stack.push_async_callback(warehouse.stop)
            yield warehouse

    async def json_rpc(self, door: RegisteredDoor, body: Any) -> tuple[int, Any]:
        """POST ``body`` to the gateway with the door's certificate (``requests``, not ours)."""
        files = door.credentials

        def post() -> tuple[int, Any]:
            response = requests.post(
                self.gateway, json=body, timeout=10, verify=str(files.ca_file),
                cert=(str(files.cert_file), str(files.key_file)),
            )  # fmt: skip
            return response.status_code, response.json()

        return await asyncio.to_thread(post)

    async def page(self, **options: Any) -> Page:
        """A page in a fresh browser context (its own cookies: another person)."""
        context: BrowserContext = await self.browser.new_context(
            viewport={"width": 1100, "height": 1000}, **options
        )
        return await context.new_page()

    async def sign_in(self, page: Page, person: Person, password: str | None = None) -> None:
        """Type the account and password into the sign-in form and send it."""
        await page.goto(f"{self.web}/sign-in")
        await page.fill("#account", person.name)
        await page.fill("#password", person.password if password is None else password)
        await page.click("#sign-in-button")
        await page.wait_for_load_state()


def watch_console(page: Page, complaints: list[str]) -> None:
    """Keep ``page``'s console errors and warnings (a CSP violation, a script error)."""

    def keep(message: ConsoleMessage) -> None:
        url = message.location.get("url", "")
        if message.type in ("error", "warning") and not url.endswith("/favicon.ico"):
            complaints.append(f"{message.text} ({url})")

    page.on("console", keep)


def dashboard_cell(page: Page, table: str, key: str, field: str) -> Any:
    """A cell of the live dashboard (``tbody[data-table] tr[data-key] td[data-field]``)."""
    return page.locator(
        f'tbody[data-table="{table}"] tr[data-key="{key}"] td[data-field="{field}"]'
    )


WATCH_DOOR = """thing => {
  window.doorSeen = [];
  const look = () => {
    const cell = document.querySelector(
      `tbody[data-table="devices"] tr[data-key="${thing}"] td[data-field="door"]`);
    const text = cell ? cell.textContent : null;
    if (text && window.doorSeen[window.doorSeen.length - 1] !== text) {
      window.doorSeen.push(text);
    }
  };
  new MutationObserver(look).observe(
    document.querySelector('tbody[data-table="devices"]'),
    {subtree: true, childList: true, characterData: true});
  look();
}"""
"""Every text the door's cell on the dashboard shows, in order, kept in ``window.doorSeen``
(the door is open only ``hold`` seconds: a poll could miss it, a MutationObserver cannot).
An empty cell (the certificate known, no shadow yet) is not a door state."""


@contextlib.asynccontextmanager
async def open_site(home: Path, artifacts: Path) -> AsyncIterator[Site]:
    """Start the platform as ``pervasive up`` does, and chromium; stop both afterwards.

    ``artifacts``: contracts compiled once per machine (``tests/conftest.py``), copied into
    the data directory's cache so the platform does not compile them again.
    """
    shutil.copytree(artifacts, home / "artifacts")
    settings = Settings(
        home=home, broker="embedded", password=PASSWORD,
        web=WebSettings(port=0, dashboard_interval=0.2),
    )  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        platform = await stack.enter_async_context(Platform(settings, persist=False, shared=True))
        await platform.start("ledger", "broker", "shadow", "gateway", "web")
        factory = await platform.sale_orders()  # deployed now, as the first seller would
        path = run_file(home)
        write_run_record(path, platform.run_record())
        stack.callback(path.unlink, missing_ok=True)
        playwright = await stack.enter_async_context(async_playwright())
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        stack.push_async_callback(browser.close)
        site = Site(
            platform, await platform.ledger(), browser, (await platform.web()).url,
            (await platform.gateway()).url, Keystore(home / "keystore", kdf_iterations=2), factory,
        )  # fmt: skip
        (await platform.shadow()).service.add_listener(site.record)
        yield site


def error_of(reply: Any) -> dict[str, Any]:
    """The JSON-RPC error object of a reply; fails when the reply holds a result."""
    assert isinstance(reply, dict) and "result" not in reply, json.dumps(reply)
    error: dict[str, Any] = reply["error"]
    return error
