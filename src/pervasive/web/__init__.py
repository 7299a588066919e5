"""The sellers' and buyers' web app of paper 004 (and the live dashboard beside it).

Starlette + Jinja2, server-rendered, usable without JavaScript; a small script adds
the browser-wallet purchase. See ``README.md`` in this folder for the pages, the
control flow and what this package may import.

Example::

    context = WebContext.build(settings, ledger)
    server = await WebServer.start(create_app(context), settings.web)
    print(server.url)
"""

from pervasive.web.app import create_app
from pervasive.web.context import WAREHOUSE_ACCOUNT_PREFIX, KeystoreWarehouses, WebContext
from pervasive.web.dashboard import dashboard_routes
from pervasive.web.event_stream import cloudevents_routes
from pervasive.web.feed import DashboardFeed
from pervasive.web.market import Market, OrderStatus
from pervasive.web.receipt_book import ReceiptBook
from pervasive.web.receipts import receipt_png, receipt_svg
from pervasive.web.refusals import WebRequestRefused
from pervasive.web.server import WebServer
from pervasive.web.sessions import Session, SessionStore

__all__ = [
    "WAREHOUSE_ACCOUNT_PREFIX",
    "DashboardFeed",
    "KeystoreWarehouses",
    "Market",
    "OrderStatus",
    "ReceiptBook",
    "Session",
    "SessionStore",
    "WebContext",
    "WebRequestRefused",
    "WebServer",
    "cloudevents_routes",
    "create_app",
    "dashboard_routes",
    "receipt_png",
    "receipt_svg",
]
