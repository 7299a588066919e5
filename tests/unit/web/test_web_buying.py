"""Buying through the web app and the receipt it gives (TestClient, embedded chain)."""

from __future__ import annotations

import html
import io
import json
import re

import cairosvg
import pytest
import zxingcpp
from PIL import Image
from web_world import PRICE, Browser, WebWorld

from pervasive.crypto import PrivateKey
from pervasive.domain import SaleReceipt

pytestmark = pytest.mark.xdist_group("web-buying")


def _scan(image_bytes: bytes) -> SaleReceipt:
    image = Image.open(io.BytesIO(image_bytes))
    on_white = Image.new("RGB", image.size, "white")
    on_white.paste(image, mask=image.getchannel("A") if image.mode == "RGBA" else None)
    [barcode] = zxingcpp.read_barcodes(on_white)
    return SaleReceipt.decode(barcode.text)


def _flashes(page_text: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'class="flash [a-z]+"[^>]*>([^<]*)<', page_text)]


def _sold_events(world: WebWorld, order: str) -> int:
    events = world.run(world.factory.events, 0)
    return sum(1 for e in events if e.kind == "sold" and e.order == order)


def test_a_buyer_buys_and_gets_a_receipt_that_scans_and_verifies(world: WebWorld) -> None:
    seller, buyer = world.account("seller"), world.account("buyer")
    order = world.list_item(seller)
    seller_before = world.run(world.ledger.balance, seller.address)
    browser = world.browser()
    browser.sign_in(buyer)
    offer = browser.get(f"/orders/{order}")
    assert 'id="buy-form"' in offer.text and 'id="wallet-buy" hidden' in offer.text
    page = browser.post(f"/orders/{order}/buy")
    assert page.status_code == 200 and page.url.path == f"/orders/{order}/receipt"
    assert "You bought Tesla alpha for 2 ETH" in _flashes(page.text)[0]
    [item] = world.run(world.factory.items, [order])
    assert item.sold and item.buyer == buyer.address
    assert world.run(world.ledger.balance, seller.address) == seller_before + PRICE
    # the receipt, in words, as text, as PNG and as SVG: one and the same, signed by the buyer
    assert f'data-order="{order}" data-buyer="{buyer.address}"' in page.text
    [text] = re.findall(r'data-receipt="([^"]+)"', page.text)
    receipt = SaleReceipt.decode(text)
    receipt.verify(chain_id=world.ledger.chain_id)
    assert (receipt.order, receipt.buyer) == (order, buyer.address)
    png = browser.get(f"/orders/{order}/receipt.png")
    assert png.headers["content-type"] == "image/png"
    assert _scan(png.content) == receipt
    svg = browser.get(f"/orders/{order}/receipt.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert _scan(cairosvg.svg2png(bytestring=svg.content)) == receipt
    # "my purchases" lists it with its receipt; the seller sees it sold to the buyer
    purchases = browser.get("/purchases")
    assert f'<tr data-order="{order}" data-status="sold"' in purchases.text
    assert f'href="/orders/{order}/receipt"' in purchases.text
    seller_browser = world.browser()
    seller_browser.sign_in(seller)
    mine = seller_browser.get("/sell")
    assert f'<tr data-order="{order}" data-status="sold">' in mine.text
    assert f'title="{buyer.address}"' in mine.text


def test_buying_twice_leads_to_the_first_receipt_and_pays_once(world: WebWorld) -> None:
    seller, buyer = world.account("seller"), world.account("buyer")
    order = world.list_item(seller)
    browser = world.browser()
    browser.sign_in(buyer)
    form_page = browser.get(f"/orders/{order}")  # two tabs: the same form posted twice
    browser.post(f"/orders/{order}/buy")
    balance = world.run(world.ledger.balance, buyer.address)
    before = world.context.refusals["double_buy"]
    browser.token = re.findall(r'name="csrf_token" value="([^"]+)"', form_page.text)[0]
    again = browser.post(f"/orders/{order}/buy")
    assert again.url.path == f"/orders/{order}/receipt"
    assert "You bought this item already: here is your receipt." in _flashes(again.text)
    assert world.context.refusals["double_buy"] == before + 1
    assert world.run(world.ledger.balance, buyer.address) == balance  # nothing sent, no gas
    assert _sold_events(world, order) == 1


def test_an_item_sold_to_someone_else_is_refused_with_a_message(world: WebWorld) -> None:
    seller, first, second = world.account("seller"), world.account("buyer"), world.account("buyer")
    order = world.list_item(seller)
    early, late = world.browser(), world.browser()
    early.sign_in(first)
    late.sign_in(second)
    late.get(f"/orders/{order}")  # the form is on screen...
    early.post(f"/orders/{order}/buy")  # ...when someone else buys
    page = late.post(f"/orders/{order}/buy")
    assert page.status_code == 409
    assert "This item is sold already: choose another one from the list." in page.text
    assert 'id="buy-error"' in page.text and "Traceback" not in page.text
    [item] = world.run(world.factory.items, [order])
    assert item.buyer == first.address
    refused = late.get(f"/orders/{order}/receipt")
    assert refused.status_code == 403 and "Only the buyer sees the receipt" in refused.text


def test_insufficient_funds_are_explained(world: WebWorld) -> None:
    seller = world.account("seller")
    poor = world.account("poor", ether=PRICE // 2)
    broke = world.account("broke", ether=0)
    order = world.list_item(seller)
    for account, words in ((poor, "holds 1 ETH and this item costs 2 ETH"), (broke, "holds 0 ETH")):
        browser = world.browser()
        browser.sign_in(account)
        before = world.context.refusals["insufficient_funds"]
        page = browser.post(f"/orders/{order}/buy")
        assert page.status_code == 409
        assert "Insufficient funds" in page.text and words in page.text
        assert world.context.refusals["insufficient_funds"] == before + 1
    gas_only = world.account("exact", ether=PRICE)  # the price, but nothing for the gas
    browser = world.browser()
    browser.sign_in(gas_only)
    page = browser.post(f"/orders/{order}/buy")
    assert page.status_code == 409 and "cannot pay the gas to buy this item" in page.text
    assert not world.run(world.factory.items, [order])[0].sold


def test_a_seller_cannot_buy_the_own_item(world: WebWorld) -> None:
    seller = world.account("seller")
    order = world.list_item(seller)
    browser = world.browser()
    browser.sign_in(seller)
    page = browser.post(f"/orders/{order}/buy")
    assert page.status_code == 409 and "This is your own item" in page.text


def test_buying_signed_out_asks_to_sign_in_and_comes_back(world: WebWorld) -> None:
    seller, buyer = world.account("seller"), world.account("buyer")
    order = world.list_item(seller)
    browser = world.browser()
    browser.get(f"/orders/{order}")
    page = browser.post(f"/orders/{order}/buy")
    assert page.url.path == "/sign-in" and f'name="next" value="/orders/{order}"' in page.text
    back = browser.post(
        "/sign-in", {"account": buyer.name, "password": buyer.password, "next": f"/orders/{order}"}
    )
    assert back.url.path == f"/orders/{order}" and 'id="buy-button"' in back.text


def _wallet_post(browser: Browser, order: str, body: object, *, token: str | None = None):
    return browser.client.post(
        f"/orders/{order}/wallet-receipt",
        content=json.dumps(body),
        headers={"content-type": "application/json", "accept": "application/json",
                 "x-csrf-token": browser.token if token is None else token},
    )  # fmt: skip


def test_a_wallet_receipt_is_verified_against_the_signature_and_the_chain(world: WebWorld) -> None:
    seller, buyer = world.account("seller"), world.account("buyer")
    order = world.list_item(seller)
    world.run(world.factory.order(order).with_signer(buyer.signer).buy)  # the wallet's own buy()
    browser = world.browser()  # no sign-in: the wallet proves who it is
    browser.get(f"/orders/{order}")
    document = browser.get(f"/orders/{order}/typed-data.json?buyer={buyer.address}").json()
    assert document == json.loads(json.dumps(
        SaleReceipt.typed_data(world.ledger.chain_id, order, buyer.address)
    ))  # fmt: skip
    key = PrivateKey(buyer.signer.private_key)  # what the wallet does with eth_signTypedData_v4
    signature = (
        "0x" + SaleReceipt.sign(key, world.ledger.chain_id, order, buyer.address).signature.hex()
    )
    without_token = _wallet_post(
        browser, order, {"buyer": buyer.address, "signature": signature}, token=""
    )
    assert without_token.status_code == 403 and without_token.json()["reason"] == "csrf"
    forged = _wallet_post(browser, order, {"buyer": buyer.address, "signature": "0x" + "11" * 65})
    assert forged.status_code == 400 and forged.json()["reason"] == "bad_wallet_receipt"
    stranger = world.account("stranger")
    theirs = SaleReceipt.sign(PrivateKey(stranger.signer.private_key), world.ledger.chain_id, order,
                              stranger.address)  # fmt: skip
    not_buyer = _wallet_post(
        browser, order, {"buyer": stranger.address, "signature": "0x" + theirs.signature.hex()}
    )
    assert not_buyer.status_code == 409 and "was not bought by" in not_buyer.json()["error"]
    assert browser.get(f"/orders/{order}/receipt").status_code == 403
    accepted = _wallet_post(browser, order, {"buyer": buyer.address, "signature": signature})
    assert accepted.status_code == 200
    assert accepted.json() == {"receipt_url": f"/orders/{order}/receipt"}
    page = browser.get(accepted.json()["receipt_url"])
    assert page.status_code == 200
    [text] = re.findall(r'data-receipt="([^"]+)"', page.text)
    assert SaleReceipt.decode(text).signature.hex() == signature[2:]
    assert _scan(browser.get(f"/orders/{order}/receipt.png").content).buyer == buyer.address
    assert f'data-order="{order}"' in browser.get("/purchases").text
    kept = world.portal.call(
        world.context.receipts.get, world.ledger.chain_id, order, buyer.address
    )
    assert kept is not None and kept.signature.hex() == signature[2:]


def test_a_release_shows_on_the_sellers_list_the_purchases_and_the_receipt(world: WebWorld) -> None:
    seller, buyer = world.account("seller"), world.account("buyer")
    order = world.list_item(seller)
    browser = world.browser()
    browser.sign_in(buyer)
    browser.post(f"/orders/{order}/buy")
    handle = world.factory.order(order)
    receipt = world.run(handle.with_signer(world.warehouse).release, buyer.address)
    assert not world.run(handle.verify_ownership, buyer.address)
    seller_browser = world.browser()
    seller_browser.sign_in(seller)
    mine = seller_browser.get("/sell")
    assert f'<tr data-order="{order}" data-status="released">' in mine.text
    assert f'data-released-block="{receipt.block_number}"' in mine.text
    used = browser.get(f"/orders/{order}/receipt")
    assert 'id="receipt-used"' in used.text
    assert f"at block {receipt.block_number}: the receipt has been used" in html.unescape(used.text)
    purchases = browser.get("/purchases")
    assert f'<tr data-order="{order}" data-status="released"' in purchases.text


def test_the_session_cookie_is_secure_over_https(world: WebWorld) -> None:
    browser = world.browser(base_url="https://testserver")
    page = browser.client.get("/")
    cookie = page.headers["set-cookie"]
    assert cookie.endswith("; Secure") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
