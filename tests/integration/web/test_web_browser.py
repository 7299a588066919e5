"""Sellers and buyers in a real chromium against a real web server (embedded chain).

The receipt's QR is read the way a person's phone would read it: from a screenshot of
the page (zxing-cpp), then checked as the warehouse door checks it.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import zxingcpp
from browser_world import PRICE, BrowserWorld, browser_world, scan_screenshot
from PIL import Image
from playwright.async_api import ConsoleMessage, Page

from pervasive.domain import SaleReceipt

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("web-browser"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> AsyncIterator[BrowserWorld]:
    async with browser_world(tmp_path_factory.mktemp("web-browser"), artifacts) as built:
        yield built


def _watch_console(page: Page) -> list[str]:
    """Console errors (a CSP violation shows here) of ``page``."""
    errors: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", keep)
    return errors


async def test_seller_lists_buyer_buys_and_the_screenshot_qr_is_a_valid_receipt(
    world: BrowserWorld,
) -> None:
    seller, buyer = await world.account("seller"), await world.account("buyer")
    # the seller lists an item with the form
    sell = await world.page()
    seller_errors = _watch_console(sell)
    await world.sign_in(sell, seller)
    await sell.goto(f"{world.url}/sell")
    await sell.fill("#make", "Volvo")
    await sell.fill("#model", "XC40")
    await sell.fill("#year", "2021")
    await sell.fill("#price", "2.75")
    await sell.fill("#serial", "VIN-77")
    await sell.fill("#warehouse", world.warehouse.address)
    await sell.click("#create-order")
    row = sell.locator('#my-orders tr[data-status="listed"]')
    await row.wait_for()
    order = await row.get_attribute("data-order")
    assert order is not None
    # the buyer, in another browser context, finds it, reads Table 1's fields and buys
    shop = await world.page()
    buyer_errors = _watch_console(shop)
    await world.sign_in(shop, buyer)
    await shop.goto(world.url)
    await shop.click(f'#for-sale tr[data-order="{order}"] a >> nth=0')
    details = shop.locator("#order-details")
    assert await details.locator('[data-field="make"]').inner_text() == "Volvo"
    assert await details.locator('[data-field="price"]').get_attribute("data-wei") == str(
        2_750_000_000_000_000_000
    )
    assert await shop.locator("#wallet-buy").is_hidden()  # no window.ethereum in this browser
    await shop.click("#buy-button")
    await shop.wait_for_url(f"**/orders/{order}/receipt")
    await shop.locator("#receipt-qr").wait_for()
    await shop.wait_for_function("document.getElementById('receipt-qr').complete")
    # the QR from a screenshot of the page is the buyer's valid receipt for that order
    scanned = scan_screenshot(await shop.screenshot(full_page=True))
    scanned.verify(chain_id=world.ledger.chain_id)
    assert (scanned.order, scanned.buyer) == (order, buyer.address)
    assert await world.factory.order(order).verify_ownership(buyer.address)
    assert await shop.locator("#receipt-text").get_attribute("data-receipt") == scanned.encode()
    # downloadable as PNG, and as SVG that chromium renders to the same code
    async with shop.expect_download() as download_info:
        await shop.click("#receipt-png")
    download = await download_info.value
    assert download.suggested_filename == f"receipt-{order}.png"
    downloaded = Path(await download.path()).read_bytes()
    [from_file] = zxingcpp.read_barcodes(Image.open(io.BytesIO(downloaded)).convert("RGB"))
    assert SaleReceipt.decode(from_file.text) == scanned
    svg_page = await shop.context.new_page()
    await svg_page.goto(f"{world.url}/orders/{order}/receipt.svg")
    assert scan_screenshot(await svg_page.screenshot()) == scanned
    # the seller's list says sold, to whom
    await sell.reload()
    sold = sell.locator(f'#my-orders tr[data-order="{order}"]')
    assert await sold.get_attribute("data-status") == "sold"
    assert buyer.address[:6] in await sold.locator(".status").inner_text()
    assert seller_errors == [] and buyer_errors == []  # nothing broke the CSP


async def test_a_wrong_password_is_shown_next_to_the_field(world: BrowserWorld) -> None:
    buyer = await world.account("buyer")
    page = await world.page()
    await world.sign_in(page, buyer, password="not my password")
    message = page.locator("#password-error")
    assert f"Wrong password for account '{buyer.name}'" in await message.inner_text()
    assert await page.input_value("#account") == buyer.name
    assert await page.input_value("#password") == ""
    cookies = await page.context.cookies()
    [session] = [c for c in cookies if c["name"] == "pervasive_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert all("not my password" not in c["value"] for c in cookies)
    assert await page.evaluate("document.cookie") == ""  # HttpOnly: not visible to scripts


async def test_buying_twice_from_two_tabs_ends_on_the_first_receipt(world: BrowserWorld) -> None:
    seller, buyer = await world.account("seller"), await world.account("buyer")
    order = await world.list_item(seller)
    first = await world.page()
    await world.sign_in(first, buyer)
    second = await first.context.new_page()
    for tab in (first, second):
        await tab.goto(f"{world.url}/orders/{order}")
    await first.click("#buy-button")
    await first.wait_for_url(f"**/orders/{order}/receipt")
    balance = await world.ledger.balance(buyer.address)
    await second.click("#buy-button")
    await second.wait_for_url(f"**/orders/{order}/receipt")
    flash = second.locator('.flash[data-kind="error"]')
    assert await flash.inner_text() == "You bought this item already: here is your receipt."
    assert await world.ledger.balance(buyer.address) == balance
    events = await world.factory.events(0)
    assert [e.buyer for e in events if e.kind == "sold" and e.order == order] == [buyer.address]


async def test_a_second_buyer_and_a_poor_buyer_are_told_why(world: BrowserWorld) -> None:
    seller, buyer, late = [await world.account(r) for r in ("seller", "buyer", "late")]
    poor = await world.account("poor", ether=PRICE // 3)
    order = await world.list_item(seller)
    late_page, poor_page = await world.page(), await world.page()
    await world.sign_in(late_page, late)
    await world.sign_in(poor_page, poor)
    await poor_page.goto(f"{world.url}/orders/{order}")
    await poor_page.click("#buy-button")
    message = await poor_page.locator("#buy-error").inner_text()
    assert "Insufficient funds" in message and "this item costs 3 ETH" in message
    await late_page.goto(f"{world.url}/orders/{order}")
    await world.factory.order(order).with_signer(buyer.signer).buy()
    await late_page.click("#buy-button")
    assert "sold already" in await late_page.locator("#buy-error").inner_text()


async def test_form_messages_sit_next_to_their_fields(world: BrowserWorld) -> None:
    seller = await world.account("seller")
    page = await world.page()
    await world.sign_in(page, seller)
    await page.goto(f"{world.url}/sell")
    await page.fill("#make", "Saab")
    await page.fill("#price", "-3")
    await page.fill("#warehouse", "0x1234")
    await page.click("#create-order")
    assert "at most one dot" in await page.locator("#price-error").inner_text()
    assert "40 hexadecimal digits" in await page.locator("#warehouse-error").inner_text()
    assert "Enter the model" in await page.locator("#model-error").inner_text()
    assert await page.locator("#make-error").count() == 0
    assert await page.input_value("#make") == "Saab"
    assert await page.get_attribute("#price", "aria-invalid") == "true"
