"""Sign-in, sign-out and new accounts: keystore accounts unlocked into server memory.

A seller or buyer signs in with the name and password of an account of the data
directory's keystore (``pervasive account create``, or the "new account" page). The
key is decrypted on the server (scrypt, in a worker thread, two at a time) and kept
only in the session (:mod:`pervasive.web.sessions`); the password is used once and
dropped: it is never stored, logged, put in a cookie or sent back in a page. A wrong
password or an unknown account is refused with a message that says so and counted
(``wrong_password``, ``unknown_account``).

Example::

    routes = account_routes()     # GET/POST /sign-in, POST /sign-out, GET/POST /accounts/new
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pervasive.errors import KeystoreError
from pervasive.web.csrf import checked_form, session_of
from pervasive.web.forms import parse_new_account, parse_sign_in
from pervasive.web.refusals import WebRequestRefused
from pervasive.web.rendering import context_of, render

__all__ = ["account_routes", "local_path", "sign_in_first"]

_log = logging.getLogger(__name__)


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path of this site, else ``default`` (no open redirects).

    Example: ``local_path("//evil.example/") == "/"``.
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target


def sign_in_first(request: Request, why: str, back: str | None = None) -> Response:
    """Send the browser to the sign-in page, then to ``back`` (default: this page); counted.

    Example: ``return sign_in_first(request, "Sign in to sell an item.")``.
    """
    context_of(request).refusals["not_signed_in"] += 1
    session_of(request).flash(why, "error")
    target = back or request.url.path
    return RedirectResponse(f"/sign-in?next={quote(local_path(target))}", status_code=303)


def _unlocks(request: Request) -> asyncio.Semaphore:
    semaphore: asyncio.Semaphore = request.app.state.unlocks
    return semaphore


async def _sign_in_page(request: Request) -> Response:
    """The sign-in form."""
    next_path = local_path(request.query_params.get("next"))
    return render(request, "sign_in.html", {"errors": {}, "values": {}, "next": next_path})


async def _sign_in(request: Request) -> Response:
    """Unlock the account into the session, or say what is wrong."""
    context = context_of(request)
    form = await checked_form(request)
    next_path = local_path(str(form.get("next") or ""))
    parsed = parse_sign_in({k: v for k, v in form.items() if isinstance(v, str)})

    def refuse(reason: str, errors: dict[str, str], status: int) -> Response:
        context.refusals[reason] += 1
        values = {"errors": errors, "values": parsed.submitted, "next": next_path}
        return render(request, "sign_in.html", values, status=status)

    if parsed.value is None:
        return refuse("invalid_form", parsed.errors, 400)
    account = parsed.value.account
    if account not in context.keystore.names():
        _log.info("sign-in refused: no account %r", account)
        message = f"There is no account named {account!r}: check the name or create an account."
        return refuse("unknown_account", {"account": message}, 401)
    try:
        async with _unlocks(request):
            signer = await asyncio.to_thread(context.keystore.load, account, parsed.value.password)
    except KeystoreError:
        _log.info("sign-in refused: wrong password for account %r", account)
        message = f"Wrong password for account {account!r}: type it again (mind the caps lock)."
        return refuse("wrong_password", {"password": message}, 401)
    session = context.sessions.sign_in(session_of(request), account, signer)
    request.state.session = session
    _log.info("signed in account %r (%s)", account, signer.address)
    session.flash(f"Signed in as {account} ({signer.address}).")
    return RedirectResponse(next_path, status_code=303)


async def _sign_out(request: Request) -> Response:
    """End the session: its unlocked key is dropped at once."""
    context = context_of(request)
    await checked_form(request)
    old = session_of(request)
    if old.account:
        _log.info("signed out account %r", old.account)
    session = context.sessions.sign_out(old)
    request.state.session = session
    session.flash("Signed out: your key is no longer held by this server.")
    return RedirectResponse("/", status_code=303)


async def _new_account_page(request: Request) -> Response:
    """The form that creates a keystore account (new buyers have none)."""
    return render(request, "new_account.html", {"errors": {}, "values": {}})


async def _new_account(request: Request) -> Response:
    """Create an encrypted keystore account and sign in with it."""
    context = context_of(request)
    form = await checked_form(request)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    parsed = parse_new_account(fields, set(context.keystore.names()))
    if parsed.value is None:
        context.refusals["invalid_form"] += 1
        values = {"errors": parsed.errors, "values": parsed.submitted}
        return render(request, "new_account.html", values, status=400)
    account = parsed.value.account
    try:
        async with _unlocks(request):
            signer = await asyncio.to_thread(
                context.keystore.create, account, parsed.value.password
            )
    except KeystoreError as exc:
        raise WebRequestRefused(409, "account_exists", f"{exc}: choose another name.") from exc
    _log.info("created account %r (%s)", account, signer.address)
    session = context.sessions.sign_in(session_of(request), account, signer)
    request.state.session = session
    session.flash(
        f"Created account {account} with address {signer.address} and signed in. "
        "It holds no ether yet: ask the operator to fund it before you buy."
    )
    return RedirectResponse("/", status_code=303)


def account_routes() -> list[BaseRoute]:
    """The routes of this module.

    Example: ``Starlette(routes=[*account_routes(), ...])``.
    """
    return [
        Route("/sign-in", _sign_in_page, methods=["GET"], name="sign_in_page"),
        Route("/sign-in", _sign_in, methods=["POST"], name="sign_in"),
        Route("/sign-out", _sign_out, methods=["POST"], name="sign_out"),
        Route("/accounts/new", _new_account_page, methods=["GET"], name="new_account_page"),
        Route("/accounts/new", _new_account, methods=["POST"], name="new_account"),
    ]
