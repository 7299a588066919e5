"""The receipt pages: the buyer's QR receipt on screen, as PNG and SVG, and wallet receipts.

Paper 004 section 4.4: after a purchase the buyer gets a barcode with the order's and
the buyer's addresses; ours also carries the buyer's EIP-712 signature
(:class:`~pervasive.domain.sale_receipt.SaleReceipt`). A receipt is shown only to a
session that acts for its buyer (signed in with the buyer's account, or having
proved the buyer's wallet): it is what opens the warehouse door.

Wallet mode (EIP-1193, ``static/wallet.js``): the page fetches
``/orders/<order>/typed-data.json?buyer=<address>`` (the EIP-712 document), the wallet
signs it with ``eth_signTypedData_v4`` and the page POSTs ``{"buyer", "signature"}``
to ``/orders/<order>/wallet-receipt`` with its CSRF token in ``X-CSRF-Token``. The
server checks the signature recovers the buyer and that the chain says this order is
sold to that buyer, keeps the receipt and answers with the receipt page's address.
No key ever reaches the server in this mode.

Example::

    routes = receipt_routes()   # GET .../receipt, .../receipt.png, .../receipt.svg,
                                # GET .../typed-data.json, POST .../wallet-receipt
"""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pervasive.contracts.sale_order import SaleItem
from pervasive.crypto import PrivateKey
from pervasive.domain.sale_receipt import InvalidReceipt, SaleReceipt
from pervasive.errors import InvalidInput
from pervasive.web.csrf import CSRF_HEADER, check_token, session_of
from pervasive.web.forms import parse_address
from pervasive.web.receipts import QR_SCALE, receipt_png, receipt_qr, receipt_svg
from pervasive.web.refusals import WebRequestRefused
from pervasive.web.rendering import context_of, render

__all__ = ["receipt_routes"]

_log = logging.getLogger(__name__)
_MAX_JSON_BYTES = 4096


async def _receipt_of(request: Request) -> tuple[SaleItem, SaleReceipt]:
    """The order's item and the receipt of its buyer, if this session acts for the buyer."""
    context = context_of(request)
    session = session_of(request)
    item = await context.market.item(str(request.path_params["address"]))
    if item.buyer is None or item.buyer not in session.addresses:
        raise WebRequestRefused(
            403,
            "not_the_buyer",
            "Only the buyer sees the receipt of this order: sign in with the account "
            "that bought it (or buy it with your wallet again on this browser).",
        )
    receipt = context.receipts.get(context.ledger.chain_id, item.address, item.buyer)
    signer = session.signer
    if receipt is None and signer is not None and signer.address == item.buyer:
        key = PrivateKey(signer.private_key)
        receipt = SaleReceipt.sign(key, context.ledger.chain_id, item.address, item.buyer)
        context.receipts.put(receipt)
    if receipt is None:
        raise WebRequestRefused(
            404,
            "no_receipt",
            "This browser holds no receipt for the order: sign in with the buyer's account, "
            "or sign the receipt with your wallet on the order's page.",
        )
    return item, receipt


async def _receipt_page(request: Request) -> Response:
    context = context_of(request)
    item, receipt = await _receipt_of(request)
    status = await context.market.status_of(item)
    qr_size, _ = receipt_qr(receipt).symbol_size(scale=QR_SCALE)
    values = {
        "item": item,
        "receipt": receipt,
        "status": status,
        "text": receipt.encode(),
        "qr_size": qr_size,
    }
    return render(request, "receipt.html", values)


async def _receipt_png(request: Request) -> Response:
    item, receipt = await _receipt_of(request)
    headers = {
        "content-disposition": f'inline; filename="receipt-{item.address}.png"',
        "cache-control": "no-store",
    }
    return Response(receipt_png(receipt), media_type="image/png", headers=headers)


async def _receipt_svg(request: Request) -> Response:
    item, receipt = await _receipt_of(request)
    headers = {
        "content-disposition": f'inline; filename="receipt-{item.address}.svg"',
        "cache-control": "no-store",
    }
    return Response(receipt_svg(receipt), media_type="image/svg+xml", headers=headers)


async def _typed_data(request: Request) -> Response:
    context = context_of(request)
    item = await context.market.item(str(request.path_params["address"]))
    try:
        buyer = parse_address(request.query_params.get("buyer", ""), "buyer")
    except InvalidInput as exc:
        raise WebRequestRefused(400, "bad_wallet_receipt", f"{exc}.") from exc
    document = SaleReceipt.typed_data(context.ledger.chain_id, item.address, buyer)
    return JSONResponse(document, headers={"cache-control": "no-store"})


async def _wallet_receipt(request: Request) -> Response:
    context = context_of(request)
    session = session_of(request)
    check_token(session, request.headers.get(CSRF_HEADER))
    body = await request.body()
    try:
        if len(body) > _MAX_JSON_BYTES:
            raise InvalidInput("the request is too large")
        sent = json.loads(body)
        if not isinstance(sent, dict):
            raise InvalidInput("send a JSON object with buyer and signature")
        buyer = parse_address(str(sent.get("buyer", "")), "buyer")
        signature = sent.get("signature")
        if not isinstance(signature, str):
            raise InvalidInput("the signature must be hex text")
        item = await context.market.item(str(request.path_params["address"]))
        receipt = SaleReceipt.from_signature(
            context.ledger.chain_id, item.address, buyer, signature
        )
        receipt.verify(chain_id=context.ledger.chain_id)
    except (InvalidInput, ValueError) as exc:  # InvalidReceipt is an InvalidInput
        reason = exc.kind if isinstance(exc, InvalidReceipt) else "format"
        _log.info("wallet receipt refused: %s", reason)
        raise WebRequestRefused(
            400, "bad_wallet_receipt", f"The wallet's receipt was refused: {exc}."
        ) from exc
    if item.buyer != buyer:
        raise WebRequestRefused(
            409,
            "wallet_not_buyer",
            f"The chain says order {item.address} was not bought by {buyer}: "
            "send buy() from this wallet account first.",
        )
    context.receipts.put(receipt)
    session.wallet = buyer
    session.flash(
        f"Your wallet {buyer} bought {item.make} {item.model}. "
        "Show this receipt at the warehouse to collect the item."
    )
    _log.info("wallet %s signed the receipt of sale order %s", buyer, item.address)
    return JSONResponse({"receipt_url": f"/orders/{item.address}/receipt"})


def receipt_routes() -> list[BaseRoute]:
    """The routes of this module.

    Example: ``Starlette(routes=[*receipt_routes(), ...])``.
    """
    return [
        Route("/orders/{address}/receipt", _receipt_page, methods=["GET"], name="receipt"),
        Route("/orders/{address}/receipt.png", _receipt_png, methods=["GET"], name="receipt_png"),
        Route("/orders/{address}/receipt.svg", _receipt_svg, methods=["GET"], name="receipt_svg"),
        Route("/orders/{address}/typed-data.json", _typed_data, methods=["GET"], name="typed_data"),
        Route(
            "/orders/{address}/wallet-receipt",
            _wallet_receipt,
            methods=["POST"],
            name="wallet_receipt",
        ),
    ]
