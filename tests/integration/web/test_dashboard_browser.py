"""Debian's chromium on the dashboard of the web app: changes show live, without a reload.

The whole stack runs in this process: the platform (embedded chain and broker, shadow
service), the dashboard feed, the web app with its Content-Security-Policy under
uvicorn. The browser opens ``/dashboard``; then a device reports its door, a seller
lists an item and a buyer buys it, all from Python, and the page shows each change
(waiting for the cell's text) while a marker set in the page proves it never reloaded.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import ConsoleMessage, Page, async_playwright, expect

from pervasive import Platform
from pervasive.config import Settings
from pervasive.contracts.sale_order import SaleOrderFactory
from pervasive.messaging import MqttClient
from pervasive.web import WebContext, WebServer, create_app
from pervasive.web.dashboard import dashboard_routes
from pervasive.web.feed import DashboardFeed

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed"),
]


def cell(page: Page, table: str, key: str, field: str) -> Any:
    return page.locator(
        f'tbody[data-table="{table}"] tr[data-key="{key}"] td[data-field="{field}"]'
    )


@dataclass
class Site:
    platform: Platform
    feed: DashboardFeed
    url: str

    async def report_door(self, thing: str, door: str) -> None:
        """Device ``thing`` reports its door; returns once the dashboard feed shows it."""
        options = self.platform.client_options(thing)
        await (await self.platform.broker()).settle()
        async with MqttClient(options) as device:
            payload = json.dumps({"state": {"reported": {"door": door}}}).encode()
            await device.publish(f"$aws/things/{thing}/shadow/update", payload)
        async with asyncio.timeout(10):
            while not any(r.key == thing and r.door == door for r in self.feed.snapshot().devices):
                await asyncio.sleep(0.02)


@pytest.fixture
async def site(tmp_settings: Settings, artifacts: Path) -> AsyncIterator[Site]:
    settings = replace(tmp_settings, broker="embedded", password="test password")
    async with Platform(settings, persist=False) as platform:
        await platform.start("ledger", "broker", "shadow")
        running, ledger = await platform.shadow(), await platform.ledger()
        feed = DashboardFeed(
            ledger,
            authority=platform.authority,
            shadows=running.service.store,
            book=platform.deployments(),
            artifacts=artifacts,
            interval=0.2,
        )
        running.service.add_listener(feed.shadow_changed)
        context = WebContext.build(settings, ledger, dashboard=dashboard_routes(feed))
        await feed.start()
        server = await WebServer.start(create_app(context), replace(settings.web, port=0),
                                       access_log=False)  # fmt: skip
        try:
            yield Site(platform, feed, server.url)
        finally:
            await feed.close()
            await server.close()
            context.close()


async def test_the_page_shows_a_door_and_a_sale_as_they_happen(site: Site, artifacts: Path) -> None:
    ledger = await site.platform.ledger()
    complaints: list[str] = []

    def console(message: ConsoleMessage) -> None:
        # a CSP violation or a script error would be one; the browser's own favicon
        # request (the web app has none) is not
        url = message.location.get("url", "")
        if message.type in ("error", "warning") and not url.endswith("/favicon.ico"):
            complaints.append(f"{message.text} ({url})")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            page.on("console", console)
            await page.goto(f"{site.url}/dashboard")
            await expect(page.locator("main[data-state=live]")).to_be_visible()
            await page.evaluate("window.notReloaded = true")

            await site.report_door("door-7", "closed")
            await expect(cell(page, "devices", "door-7", "door")).to_have_text("closed")
            await expect(cell(page, "devices", "door-7", "certificate")).to_have_text("active")
            await site.report_door("door-7", "open")
            await expect(cell(page, "devices", "door-7", "door")).to_have_text("open")

            seller, buyer, warehouse = (ledger.dev_signer(i) for i in (1, 2, 3))
            factory = await SaleOrderFactory.open(
                ledger, ledger.dev_signer(0), artifacts=artifacts, book=site.platform.deployments()
            )
            order = await factory.with_signer(seller).create(
                "Tesla", "alpha", 2019, 50 * 10**18, "4AA6", warehouse.address
            )
            state = cell(page, "orders", order.address, "state")
            await expect(state).to_have_text("listed")
            await expect(cell(page, "orders", order.address, "price")).to_have_text("50 ETH")
            await order.with_signer(buyer).buy()
            await expect(state).to_have_text("sold")
            await expect(cell(page, "orders", order.address, "buyer")).to_have_text(buyer.address)
            events = page.locator('tbody[data-table="events"] td[data-field="text"]')
            await expect(events.first).to_contain_text(f"sold to {buyer.address}")

            assert await page.evaluate("window.notReloaded === true"), "the page never reloaded"
            assert complaints == []
        finally:
            await browser.close()


async def test_without_javascript_the_page_is_served_whole_and_refreshes(
    site: Site,
) -> None:
    await site.report_door("door-8", "open")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = await browser.new_context(java_script_enabled=False)
            page = await context.new_page()
            await page.goto(f"{site.url}/dashboard")
            await expect(cell(page, "devices", "door-8", "door")).to_have_text("open")
            assert await page.locator('meta[http-equiv="refresh"]').count() == 1
            assert await page.locator("main[data-state=static]").count() == 1
        finally:
            await browser.close()
