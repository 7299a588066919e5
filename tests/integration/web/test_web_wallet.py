"""Buying with a browser wallet (EIP-1193) in chromium, against a real anvil node.

The wallet is a small ``window.ethereum`` injected before the page's scripts run; each
``request({method, params})`` is relayed to anvil, whose unlocked development accounts
sign ``eth_sendTransaction`` and ``eth_signTypedData_v4`` themselves. So the page's
script talks to a real node through the same interface MetaMask offers, and the web
server only ever sees the buyer's address and signature.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from browser_world import PRICE, BrowserWorld, browser_world, scan_screenshot
from playwright.async_api import BrowserContext, Request

pytestmark = [
    pytest.mark.browser,
    pytest.mark.anvil,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("web-wallet"),
]

WALLET = """
(() => {
  const account = %s;
  window.ethereum = {
    async request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") {
        return [account];
      }
      const answer = JSON.parse(await window.__relayToAnvil(method, JSON.stringify(params || [])));
      if (answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        throw error;
      }
      return answer.result;
    },
  };
})();
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> AsyncIterator[BrowserWorld]:
    home = tmp_path_factory.mktemp("web-wallet")
    async with browser_world(home, artifacts, backend="anvil") as built:
        yield built


class Wallet:
    """The relay from the page's ``window.ethereum`` to anvil, with what it was asked."""

    def __init__(self, node_url: str) -> None:
        self.node_url = node_url
        self.calls: list[tuple[str, list[Any]]] = []

    async def relay(self, method: str, params: str) -> str:
        self.calls.append((method, json.loads(params)))
        body = {
            "jsonrpc": "2.0",
            "id": len(self.calls),
            "method": method,
            "params": json.loads(params),
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.node_url, json=body) as answer,
        ):
            return json.dumps(await answer.json())

    def asked(self, method: str) -> list[list[Any]]:
        return [params for name, params in self.calls if name == method]


async def _wallet_context(world: BrowserWorld, account: str) -> tuple[BrowserContext, Wallet]:
    assert world.ledger.url is not None
    wallet = Wallet(world.ledger.url)
    context = await world.browser.new_context(viewport={"width": 1100, "height": 900})
    await context.expose_function("__relayToAnvil", wallet.relay)
    await context.add_init_script(WALLET % json.dumps(account))
    return context, wallet


async def test_buy_with_wallet_ends_on_a_receipt_that_verifies(world: BrowserWorld) -> None:
    seller = await world.account("seller")
    order = await world.list_item(seller)
    buyer = world.ledger.dev_signer(5).address  # anvil holds its key; the page never sees it
    context, wallet = await _wallet_context(world, buyer)
    page = await context.new_page()
    posted: list[Request] = []
    page.on("request", lambda request: posted.append(request) if request.method == "POST" else None)
    await page.goto(f"{world.url}/orders/{order}")
    assert await page.locator("#wallet-buy").is_visible()
    assert await page.locator("#buy-form").count() == 0  # not signed in: only the wallet can buy
    await page.click("#buy-with-wallet")
    await page.wait_for_url(f"**/orders/{order}/receipt", timeout=30_000)
    await page.wait_for_function("document.getElementById('receipt-qr').complete")
    # what the wallet was asked: buy() with exactly the price, then the EIP-712 receipt
    [[sent]] = wallet.asked("eth_sendTransaction")
    assert sent["to"].lower() == order.lower() and int(sent["value"], 16) == PRICE
    assert sent["data"] == "0x" + (await world.context.market.buy_calldata(order)).hex()
    [[signer, document]] = wallet.asked("eth_signTypedData_v4")
    assert signer == buyer and json.loads(document)["message"]["order"] == order
    # the chain and the receipt agree: sold to the wallet's account, signed by it
    item = await world.factory.order(order).item()
    assert item.sold and item.buyer == buyer
    scanned = scan_screenshot(await page.screenshot(full_page=True))
    scanned.verify(chain_id=world.ledger.chain_id)
    assert (scanned.order, scanned.buyer) == (order, buyer)
    # the server got an address and a signature, nothing else
    [receipt_post] = [r for r in posted if r.url.endswith("/wallet-receipt")]
    assert set(json.loads(receipt_post.post_data or "{}")) == {"buyer", "signature"}
    assert receipt_post.headers["x-csrf-token"]
    assert f'data-order="{order}"' in await (await page.goto(f"{world.url}/purchases")).text()
    await context.close()


async def test_the_buyers_wallet_signs_the_receipt_again_in_a_new_browser(
    world: BrowserWorld,
) -> None:
    seller = await world.account("seller")
    order = await world.list_item(seller)
    buyer = world.ledger.dev_signer(6).address
    first, _ = await _wallet_context(world, buyer)
    page = await first.new_page()
    await page.goto(f"{world.url}/orders/{order}")
    await page.click("#buy-with-wallet")
    await page.wait_for_url(f"**/orders/{order}/receipt", timeout=30_000)
    await first.close()
    # another browser (no session) with the same wallet: the sold item offers the receipt
    again, wallet = await _wallet_context(world, buyer)
    page = await again.new_page()
    await page.goto(f"{world.url}/orders/{order}")
    assert await page.locator("#wallet-buy").count() == 0
    await page.click("#sign-receipt-with-wallet")
    await page.wait_for_url(f"**/orders/{order}/receipt", timeout=30_000)
    assert wallet.asked("eth_sendTransaction") == []  # no second purchase
    await page.wait_for_function("document.getElementById('receipt-qr').complete")
    assert scan_screenshot(await page.screenshot(full_page=True)).buyer == buyer
    # a wallet that did not buy it is told so
    stranger, _ = await _wallet_context(world, world.ledger.dev_signer(7).address)
    page = await stranger.new_page()
    await page.goto(f"{world.url}/orders/{order}")
    await page.click("#sign-receipt-with-wallet")
    status = page.locator("#wallet-receipt-status")
    await status.filter(has_text="did not buy this item").wait_for()
    await again.close()
    await stranger.close()
