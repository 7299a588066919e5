"""The web app served by a real :class:`WebServer`, and Debian's chromium driven by Playwright.

Playwright cannot download its own browser here, so it launches ``/usr/bin/chromium``.
One world per test module: a chain (embedded, or anvil for the wallet), a deployed
sale-order factory, a keystore, the web app on a free port, and one chromium; each test
opens its own browser contexts (a seller's, a buyer's: separate cookies) and makes its
own accounts and orders.

Example::

    async with browser_world(home, artifacts, backend="embedded") as world:
        page = await world.page()
        await world.sign_in(page, await world.account("seller"))
"""

from __future__ import annotations

import io
import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import zxingcpp
from PIL import Image
from playwright.async_api import Browser, Page, async_playwright

from pervasive.chain import ContractCall, Keystore, Ledger, Signer, open_ledger
from pervasive.config import Settings, WebSettings
from pervasive.contracts import DeploymentBook, SaleOrderFactory
from pervasive.domain import SaleReceipt
from pervasive.web import ReceiptBook, WebContext, WebServer, create_app

CHROMIUM = "/usr/bin/chromium"
PRICE = 3 * 10**18
_names = itertools.count()


@dataclass(frozen=True)
class Account:
    """A keystore account: name, password, signer."""

    name: str
    password: str = field(repr=False)
    signer: Signer

    @property
    def address(self) -> str:
        return self.signer.address


@dataclass
class BrowserWorld:
    """A chain, the web app on a real server, and a chromium."""

    ledger: Ledger
    keystore: Keystore
    context: WebContext
    server: WebServer
    factory: SaleOrderFactory
    browser: Browser
    funder: Signer
    warehouse: Signer

    @property
    def url(self) -> str:
        return self.server.url

    async def account(self, role: str = "user", *, ether: int = 100 * 10**18) -> Account:
        """A fresh funded key in the keystore."""
        name = f"{role}-{next(_names)}"
        signer = Signer.generate()
        account = Account(name, f"{name} correct horse", signer)
        self.keystore.store(name, signer, account.password)
        if ether:
            funding = ContractCall(to=signer.address, data=b"", value=ether)
            await self.ledger.transactor(self.funder).transact(funding)
        return account

    async def list_item(self, seller: Account, *, price: int = PRICE) -> str:
        """An order created on the chain by ``seller``; its address."""
        factory = self.factory.with_signer(seller.signer)
        order = await factory.create("Tesla", "alpha", 2019, price, "4AA6", self.warehouse.address)
        return order.address

    async def page(self) -> Page:
        """A page in a fresh browser context (its own cookies)."""
        context = await self.browser.new_context(viewport={"width": 1100, "height": 900})
        return await context.new_page()

    async def sign_in(self, page: Page, account: Account, password: str | None = None) -> None:
        """Fill and send the sign-in form."""
        await page.goto(f"{self.url}/sign-in")
        await page.fill("#account", account.name)
        await page.fill("#password", account.password if password is None else password)
        await page.click("#sign-in-button")
        await page.wait_for_load_state()


def scan_screenshot(png: bytes) -> SaleReceipt:
    """The one sale receipt QR in a screenshot, decoded with zxing-cpp."""
    barcodes = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("RGB"))
    [barcode] = [b for b in barcodes if b.format == zxingcpp.BarcodeFormat.QRCode]
    return SaleReceipt.decode(barcode.text)


@asynccontextmanager
async def browser_world(
    home: Path, artifacts: Path, *, backend: Literal["embedded", "anvil"] = "embedded"
) -> AsyncIterator[BrowserWorld]:
    """The world; everything started here is stopped afterwards."""
    settings = Settings(home=home, backend=backend, web=WebSettings(port=0))
    async with AsyncExitStack() as stack:
        ledger = await open_ledger(settings, persist=False)
        stack.push_async_callback(ledger.close)
        book = DeploymentBook(":memory:")
        funder = ledger.dev_signer(0)
        factory = await SaleOrderFactory.open(ledger, funder, artifacts=artifacts, book=book)
        keystore = Keystore(home / "keystore", kdf_iterations=2)
        context = WebContext(
            settings, ledger, keystore, book, ReceiptBook(":memory:"), artifacts=artifacts
        )
        server = await WebServer.start(create_app(context), settings.web)
        stack.push_async_callback(server.close)
        playwright = await stack.enter_async_context(async_playwright())
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        stack.push_async_callback(browser.close)
        yield BrowserWorld(
            ledger, keystore, context, server, factory, browser, funder, ledger.dev_signer(3)
        )
