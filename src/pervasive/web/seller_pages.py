"""The seller's page: list an item as a new sale order, and see one's orders with status.

Paper 004 section 4.1: the seller creates a sale contract with the item's details
(make, model, year, price in ETH, serial number) and, in our release design, the
account of the warehouse that will hand the item over. The order is created by the
signed-in account's key (``SaleOrderFactory.create``; the first order of a chain
deploys the factory). Every field is validated (:mod:`pervasive.web.forms`) with its
message next to it and the form filled again. The list shows each order as listed,
sold to whom, or released at which block.

Example::

    routes = seller_routes()      # GET /sell, POST /sell
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pervasive.chain import Signer
from pervasive.web.account_pages import sign_in_first
from pervasive.web.csrf import checked_form, session_of
from pervasive.web.forms import Parsed, SaleOrderDraft, parse_sale_order
from pervasive.web.rendering import context_of, render

__all__ = ["seller_routes"]

_log = logging.getLogger(__name__)


async def _page(
    request: Request,
    signer: Signer,
    parsed: Parsed[SaleOrderDraft] | None = None,
    status: int = 200,
) -> Response:
    context = context_of(request)
    orders = await context.market.orders_of_seller(signer.address)
    values = {
        "orders": orders,
        "errors": parsed.errors if parsed else {},
        "values": parsed.submitted if parsed else {},
        "warehouses": sorted(context.warehouses.items()),
    }
    return render(request, "sell.html", values, status=status)


async def _sell_page(request: Request) -> Response:
    signer = session_of(request).signer
    if signer is None:
        return sign_in_first(request, "Sign in with your account to sell an item.")
    return await _page(request, signer)


async def _create(request: Request) -> Response:
    context = context_of(request)
    form = await checked_form(request)
    session = session_of(request)
    if session.signer is None:
        return sign_in_first(request, "Sign in with your account to sell an item.", "/sell")
    parsed = parse_sale_order({k: v for k, v in form.items() if isinstance(v, str)})
    if parsed.value is None:
        context.refusals["invalid_form"] += 1
        return await _page(request, session.signer, parsed, status=400)
    item = await context.market.create(session.signer, parsed.value)
    _log.info("account %r listed sale order %s", session.account, item.address)
    session.flash(f"Listed {item.make} {item.model} ({item.year}) as sale order {item.address}.")
    return RedirectResponse("/sell", status_code=303)


def seller_routes() -> list[BaseRoute]:
    """The routes of this module.

    Example: ``Starlette(routes=[*seller_routes(), ...])``.
    """
    return [
        Route("/sell", _sell_page, methods=["GET"], name="sell_page"),
        Route("/sell", _create, methods=["POST"], name="create_order"),
    ]
