"""The sellers' and buyers' web application (paper 004 section 5.2), as a Starlette app.

Server-rendered pages (Jinja2, autoescaped) that work as plain HTML forms; a small
script (``static/wallet.js``) adds the browser-wallet purchase. The routes:

```
GET  /                          items for sale            buyer_pages
GET  /orders/{address}          an item (Table 1 fields), buy form, wallet button
POST /orders/{address}/buy      buy() signed with the session's key -> receipt
GET  /orders/{address}/receipt  the QR receipt (+ .png, .svg)      receipt_pages
GET  /orders/{address}/typed-data.json   EIP-712 document for the wallet
POST /orders/{address}/wallet-receipt    the wallet's signature -> receipt
GET  /purchases                 the buyer's orders with their receipts
GET  /sell  POST /sell          list an item; the seller's orders   seller_pages
GET|POST /sign-in  POST /sign-out  GET|POST /accounts/new           account_pages
GET  /healthz                   chain id and head (for probes)
/static/...                     CSS and JavaScript
(the dashboard's routes when ``context.dashboard`` holds them)
GET  /events  /events/stream  /schemas   CloudEvents (``context.cloudevents``: event_stream)
```

Middleware, outermost first: security headers (CSP ...), a request-body bound, the
server-side session; the app's lifespan sweeps idle sessions (and their keys) away even
when no request comes. Every POST checks its CSRF token. A refusal
(:class:`~pervasive.web.refusals.WebRequestRefused`) or any other error becomes a page
saying what to do (JSON for ``fetch``), is counted in ``context.refusals``, and no
traceback reaches the browser.

Example::

    app = create_app(WebContext.build(settings, ledger))
    server = await WebServer.start(app, settings.web)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from pervasive.errors import ChainUnavailable, InvalidInput, PervasiveError, UserError
from pervasive.web.account_pages import account_routes
from pervasive.web.buyer_pages import buyer_routes
from pervasive.web.context import WebContext
from pervasive.web.receipt_pages import receipt_routes
from pervasive.web.refusals import WebRequestRefused
from pervasive.web.rendering import create_environment, render
from pervasive.web.security import SECURITY_HEADERS, BodyLimit, SecurityHeaders
from pervasive.web.seller_pages import seller_routes
from pervasive.web.sessions import SessionMiddleware, SessionStore

__all__ = ["MAX_BODY_BYTES", "STATIC", "create_app"]

STATIC = Path(__file__).parent / "static"
"""The folder of the web app's CSS and JavaScript."""
MAX_BODY_BYTES = 64 * 1024
"""Largest request body the app reads."""

_log = logging.getLogger(__name__)
_TITLES = {
    400: "That did not work",
    401: "Sign-in refused",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "That did not work",
    413: "Too large",
    500: "Something went wrong on our side",
    503: "The chain is not reachable",
    504: "Still waiting for the chain",
}


def create_app(context: WebContext) -> Starlette:
    """The web app over ``context`` (its ledger, keystore, stores and dashboard routes).

    Example: ``app = create_app(WebContext.build(settings, ledger))``.
    """
    routes: list[BaseRoute] = [
        *buyer_routes(),
        *receipt_routes(),
        *seller_routes(),
        *account_routes(),
        Route("/healthz", _health, methods=["GET"], name="health"),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *context.dashboard,
        *context.cloudevents,
    ]
    app = Starlette(
        routes=routes,
        lifespan=_sweeping(context.sessions),
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(BodyLimit, max_body_bytes=MAX_BODY_BYTES),
            Middleware(SessionMiddleware, store=context.sessions, skip=("/static/",)),
        ],
        exception_handlers={
            WebRequestRefused: _refused,
            HTTPException: _http_error,
            PervasiveError: _pervasive_error,
            Exception: _unexpected,
        },
    )
    app.state.context = context
    app.state.templates = create_environment()
    app.state.unlocks = asyncio.Semaphore(2)
    return app


def _sweeping(sessions: SessionStore) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """A lifespan that drops idle sessions (and their keys) even while no request comes."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(min(60.0, sessions.idle_seconds / 2))
                sessions.sweep()

        task = asyncio.create_task(sweep(), name="web sessions sweeper")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


async def _health(request: Request) -> Response:
    context: WebContext = request.app.state.context
    head = await context.ledger.block_number()
    return JSONResponse({"chain_id": context.ledger.chain_id, "block": head})


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return "application/json" in request.headers.get("accept", "") or path.endswith(
        (".json", "/wallet-receipt")
    )


def _page(request: Request, status: int, reason: str, message: str) -> Response:
    context: WebContext = request.app.state.context
    context.refusals[reason] += 1
    if _wants_json(request):
        response: Response = JSONResponse({"error": message, "reason": reason}, status)
    elif "session" in request.scope.get("state", {}):
        title = _TITLES.get(status, "That did not work")
        values = {"title": title, "message": message, "status": status}
        response = render(request, "error.html", values, status=status)
    else:
        response = HTMLResponse(_bare_page(message), status)
    response.headers.update(SECURITY_HEADERS)
    return response


def _bare_page(message: str) -> str:
    import html

    return (
        "<!doctype html><meta charset=utf-8><title>pervasive</title>"
        f"<p>{html.escape(message)}</p><p><a href=/>Back to the orders for sale</a></p>"
    )


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebRequestRefused)
    return _page(request, exc.status, exc.reason, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = "There is no page at this address: check the link, or start from the list."
    elif exc.status_code == 405:
        message = "This page cannot be used that way: go back and use its buttons."
    else:
        message = f"{exc.detail}."
    return _page(request, exc.status_code, f"http_{exc.status_code}", message)


async def _pervasive_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ChainUnavailable):
        _log.warning("chain unavailable while serving %s: %s", request.url.path, exc)
        message = "The blockchain node cannot be reached right now: try again in a minute."
        return _page(request, 503, "chain_unavailable", message)
    if isinstance(exc, InvalidInput):
        return _page(request, 400, "invalid_input", f"{exc}.")
    if isinstance(exc, UserError):
        return _page(request, 409, type(exc).__name__, f"{exc}.")
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    reference = secrets.token_hex(4)
    _log.error(
        "error %s while serving %s %s", reference, request.method, request.url.path, exc_info=exc
    )
    message = (
        "The request failed because of an error in this server, not something you did. "
        f"Try again; if it keeps failing, tell the operator the reference {reference}."
    )
    return _page(request, 500, "internal_error", message)
