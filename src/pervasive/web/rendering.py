"""Rendering the web app's pages: the Jinja2 environment and what every page is given.

Templates live in ``templates/`` beside this module; every one is autoescaped (a
seller's "make" of ``<script>`` shows as text) and an undefined variable is an error,
not an empty string. :func:`render` hands each page the session (account, address),
its CSRF token (forms and the ``<meta>`` that ``fetch`` reads), the pending flash
messages and whether the dashboard is mounted, and marks the response ``no-store``
(pages show a signed-in user's data).

Example::

    return render(request, "order.html", {"item": item}, status=409)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from pervasive.web.context import WebContext
from pervasive.web.csrf import session_of
from pervasive.web.forms import format_eth

__all__ = ["TEMPLATES", "context_of", "create_environment", "render", "short_address"]

TEMPLATES = Path(__file__).parent / "templates"
"""The folder of the web app's templates."""


def short_address(address: str | None) -> str:
    """``0x1234…cdef``: an address shortened for tables (the full one is in its title).

    Example: ``short_address("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826") == "0xCD2a…DD826"``.
    """
    if not address:
        return ""
    return f"{address[:6]}…{address[-5:]}"


def create_environment(*folders: Path) -> jinja2.Environment:
    """The Jinja2 environment over ``folders`` (then ``templates/``), autoescaping everything.

    Example: ``create_environment().get_template("base.html")``.
    """
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*folders, TEMPLATES]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["eth"] = format_eth
    environment.filters["short"] = short_address
    return environment


def context_of(request: Request) -> WebContext:
    """The :class:`WebContext` of the app serving ``request``."""
    context: WebContext = request.app.state.context
    return context


def render(
    request: Request,
    template: str,
    values: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    """The page ``template`` with ``values`` and what every page shows (session, flashes).

    Example: ``render(request, "sign_in.html", {"errors": {}}, status=401)``.
    """
    context = context_of(request)
    session = session_of(request)
    environment: jinja2.Environment = request.app.state.templates
    page = {
        "request": request,
        "session": session,
        "csrf_token": session.csrf_token,
        "flashes": session.take_flashes(),
        "dashboard": bool(context.dashboard),
        "chain_id": context.ledger.chain_id,
        **(values or {}),
    }
    html = environment.get_template(template).render(page)
    return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})
