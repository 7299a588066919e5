"""The buyer's pages: items for sale, an item's details, buying it, and one's purchases.

Paper 004 section 4.4: with the order's address the buyer reads the item
(``getItem``: make, model, year, price, sold, owner, buyer; Table 1) and buys it,
``buy()`` signed with the buyer's key. Here the server signs with the session's
unlocked key; then the buyer's EIP-712 receipt is signed the same way and kept
(:mod:`pervasive.web.receipt_book`) and the browser goes to the receipt page. Every
refusal (sold already, bought already, own item, not enough ether) is a message on
the item's page, counted; buying twice leads to the receipt of the first purchase.
The item's page also carries what a browser wallet needs for "buy with wallet"
(``static/wallet.js``): the price in wei and the calldata of ``buy()``.

Example::

    routes = buyer_routes()   # GET /, GET /orders/{address}, POST .../buy, GET /purchases
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pervasive.crypto import PrivateKey
from pervasive.domain.sale_receipt import SaleReceipt
from pervasive.web.account_pages import sign_in_first
from pervasive.web.csrf import checked_form, session_of
from pervasive.web.forms import format_eth
from pervasive.web.refusals import WebRequestRefused
from pervasive.web.rendering import context_of, render

__all__ = ["buyer_routes"]

_log = logging.getLogger(__name__)
_PAGE_SIZE = 50


async def _for_sale(request: Request) -> Response:
    context = context_of(request)
    text = request.query_params.get("page", "0")
    page = int(text) if text.isdigit() and len(text) < 6 else 0
    items, total = await context.market.listings(page, _PAGE_SIZE)
    pages = max((total + _PAGE_SIZE - 1) // _PAGE_SIZE, 1)
    return render(request, "index.html", {"items": items, "page": page, "pages": pages})


async def _order_page(
    request: Request, address: str, error: str | None = None, status: int = 200
) -> Response:
    context = context_of(request)
    item = await context.market.item(address)
    values = {
        "item": item,
        "error": error,
        "buy_data": "0x" + (await context.market.buy_calldata(item.address)).hex(),
        "is_buyer": item.buyer is not None and item.buyer in session_of(request).addresses,
    }
    return render(request, "order.html", values, status=status)


async def _order(request: Request) -> Response:
    return await _order_page(request, request.path_params["address"])


async def _buy(request: Request) -> Response:
    context = context_of(request)
    await checked_form(request)
    address = str(request.path_params["address"])
    session = session_of(request)
    signer = session.signer
    if signer is None:
        back = f"/orders/{address}"
        return sign_in_first(request, "Sign in with your account to buy this item.", back)
    try:
        item, _ = await context.market.buy(signer, address)
    except WebRequestRefused as refused:
        _log.info("purchase of %s by %s refused: %s", address, signer.address, refused.reason)
        if refused.status == 404:
            raise  # counted by the app's error page
        context.refusals[refused.reason] += 1
        if refused.reason == "double_buy":
            session.flash(refused.message, "error")
            return RedirectResponse(f"/orders/{address}/receipt", status_code=303)
        return await _order_page(request, address, refused.message, refused.status)
    receipt = SaleReceipt.sign(
        PrivateKey(signer.private_key), context.ledger.chain_id, item.address, signer.address
    )
    context.receipts.put(receipt)
    _log.info("account %r bought sale order %s", session.account, item.address)
    session.flash(
        f"You bought {item.make} {item.model} for {format_eth(item.price)} ETH. "
        "Show this receipt at the warehouse to collect the item."
    )
    return RedirectResponse(f"/orders/{item.address}/receipt", status_code=303)


async def _purchases(request: Request) -> Response:
    context = context_of(request)
    session = session_of(request)
    if not session.addresses:
        return sign_in_first(request, "Sign in with your account to see your purchases.")
    purchases = []
    for address in session.addresses:
        purchases.extend(await context.market.purchases(address))
    return render(request, "purchases.html", {"purchases": purchases})


def buyer_routes() -> list[BaseRoute]:
    """The routes of this module.

    Example: ``Starlette(routes=[*buyer_routes(), ...])``.
    """
    return [
        Route("/", _for_sale, methods=["GET"], name="for_sale"),
        Route("/orders/{address}", _order, methods=["GET"], name="order"),
        Route("/orders/{address}/buy", _buy, methods=["POST"], name="buy"),
        Route("/purchases", _purchases, methods=["GET"], name="purchases"),
    ]
