"""The web app's accounts, CSRF, validation, listing and safety nets.

Starlette's TestClient against the app on the embedded chain.
"""

from __future__ import annotations

import html
import logging
import time
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from web_world import WebWorld, web_world

from pervasive.config import WebSettings
from pervasive.web import WebContext, create_app
from pervasive.web.account_pages import local_path
from pervasive.web.security import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.xdist_group("web-pages")


def _order_form(world: WebWorld, **changes: str) -> dict[str, str]:
    return {
        "make": "Tesla",
        "model": "alpha",
        "year": "2019",
        "price": "1.5",
        "serial": "4AA6",
        "warehouse": world.warehouse.address,
        **changes,
    }


# -- sign-in ---------------------------------------------------------------------------


def test_sign_in_unlocks_the_account_into_a_fresh_httponly_session(world: WebWorld) -> None:
    seller = world.account("seller")
    browser = world.browser()
    browser.get("/")
    before = browser.client.cookies["pervasive_session"]
    first = browser.client.post(
        "/sign-in",
        data={"csrf_token": browser.token, "account": seller.name, "password": seller.password,
              "next": "/sell"},
        follow_redirects=False,
    )  # fmt: skip
    assert first.status_code == 303 and first.headers["location"] == "/sell"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    after = browser.client.cookies["pervasive_session"]
    assert after != before  # a new session id at sign-in: no fixation
    page = browser.get("/sell")
    assert f'data-address="{seller.address}"' in page.text
    assert f"Signed in as {seller.name}" in page.text


def test_a_wrong_password_says_so_is_counted_and_never_leaks(
    world: WebWorld, caplog: pytest.LogCaptureFixture
) -> None:
    seller = world.account("seller")
    wrong = "Wrong-Horse-Battery-9"
    browser = world.browser()
    before = world.context.refusals["wrong_password"]
    with caplog.at_level(logging.DEBUG):
        browser.get("/sign-in")
        refused = browser.post("/sign-in", {"account": seller.name, "password": wrong})
        accepted = browser.post("/sign-in", {"account": seller.name, "password": seller.password})
    assert refused.status_code == 401
    assert f"Wrong password for account {seller.name!r}" in html.unescape(refused.text)
    assert 'id="password-error"' in refused.text
    assert f'value="{seller.name}"' in refused.text  # the name is kept, the password is not
    assert world.context.refusals["wrong_password"] == before + 1
    assert accepted.status_code == 200
    secrets = (wrong, seller.password, seller.signer.private_key.hex())
    cookies = " ".join(f"{c.name}={c.value}" for c in browser.client.cookies.jar)
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in cookies
        assert secret not in refused.text and secret not in accepted.text
    assert f"wrong password for account {seller.name!r}" in caplog.text  # it is logged, by name


def test_an_unknown_account_is_named(world: WebWorld) -> None:
    browser = world.browser()
    browser.get("/sign-in")
    page = browser.post("/sign-in", {"account": "nobody-here", "password": "whatever-123"})
    assert page.status_code == 401
    assert "There is no account named 'nobody-here'" in html.unescape(page.text)


def test_sign_out_drops_the_key(world: WebWorld) -> None:
    seller = world.account("seller")
    browser = world.browser()
    browser.sign_in(seller)
    sessions = [s for s in world.context.sessions._sessions.values() if s.account == seller.name]
    [session] = sessions
    page = browser.post("/sign-out")
    assert page.status_code == 200 and "Signed out" in page.text
    assert session.signer is None
    assert browser.get("/sell", follow_redirects=False).status_code == 303


def test_an_idle_session_ends(world: WebWorld) -> None:
    settings = replace(world.settings, web=WebSettings(session_minutes=0.01))  # 0.6 s
    context = WebContext(
        settings, world.ledger, world.keystore, world.context.book, world.context.receipts,
        artifacts=world.context.artifacts,
    )  # fmt: skip
    seller = world.account("seller")
    browser = world.browser(create_app(context))
    browser.sign_in(seller)
    [session] = [s for s in context.sessions._sessions.values() if s.account == seller.name]
    time.sleep(1.0)
    page = browser.get("/sell")
    assert page.url.path == "/sign-in"
    assert "Your session ended after 0.01 idle minutes: sign in again." in page.text
    assert session.signer is None


def test_a_new_account_is_encrypted_in_the_keystore_and_signed_in(world: WebWorld) -> None:
    browser = world.browser()
    browser.get("/accounts/new")
    password = "a new buyer's password"
    page = browser.post(
        "/accounts/new", {"account": "newcomer", "password": password, "confirm": password}
    )
    assert page.status_code == 200
    assert 'data-account="newcomer"' in page.text and "It holds no ether yet" in page.text
    stored = (world.keystore.folder / "newcomer.json").read_text()
    assert password not in stored and '"crypto"' in stored
    assert world.keystore.load("newcomer", password).address in page.text
    again = world.browser()
    again.get("/accounts/new")
    taken = again.post(
        "/accounts/new", {"account": "newcomer", "password": password, "confirm": password}
    )
    assert taken.status_code == 400 and "exists already" in taken.text


# -- CSRF and headers --------------------------------------------------------------------


def test_every_post_refuses_a_missing_or_wrong_csrf_token(world: WebWorld) -> None:
    seller = world.account("seller")
    order = world.list_item(seller)
    browser = world.browser()
    browser.sign_in(seller)
    posts = [
        route.path.replace("{address}", order)
        for route in world.app.routes
        if isinstance(route, Route) and "POST" in (route.methods or ())
    ]
    assert len(posts) >= 6
    before = world.context.refusals["csrf"]
    for path in posts:
        missing = browser.post(path, {"account": seller.name}, csrf=False)
        wrong = browser.client.post(path, data={"csrf_token": "A" * 43})
        for refused in (missing, wrong):
            assert refused.status_code == 403, path
            assert "reload the page and try again" in refused.text
    assert world.context.refusals["csrf"] == before + 2 * len(posts)
    # a token from another session is no good either
    other = world.browser()
    other.get("/")
    stolen = browser.client.post("/sell", data={"csrf_token": other.token, **_order_form(world)})
    assert stolen.status_code == 403
    assert world.run(world.factory.orders_of_seller, seller.address) == [order]


def test_pages_carry_a_strict_content_security_policy(world: WebWorld) -> None:
    page = world.browser().get("/")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and " on" + "click=" not in page.text  # no inline script
    assert page.text.count("<script src=") == 1


def test_a_hostile_make_is_escaped(world: WebWorld) -> None:
    seller = world.account("seller")
    order = world.list_item(seller, make="<img src=x onerror=alert(1)>")
    page = world.browser().get(f"/orders/{order}")
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text


def test_errors_are_pages_with_what_to_do_never_tracebacks(world: WebWorld) -> None:
    browser = world.browser()
    missing = browser.get("/no/such/page")
    assert missing.status_code == 404 and "check the link" in missing.text
    unknown = browser.get("/orders/0x" + "12" * 20)
    assert unknown.status_code == 404 and "There is no sale order at" in unknown.text
    garbage = browser.get("/orders/not-an-address")
    assert garbage.status_code == 404 and "is not an address" in garbage.text
    big = browser.client.post("/sign-in", content=b"x" * 70_000)
    assert big.status_code == 413
    for page in (missing, unknown, garbage):
        assert "Traceback" not in page.text and 'File "' not in page.text


def test_an_internal_error_is_a_page_with_a_reference(world: WebWorld) -> None:
    seller, buyer = world.account("seller"), world.account("buyer")
    order = world.list_item(seller)
    context = WebContext(
        world.settings, world.ledger, world.keystore, world.context.book,
        world.run(_closed_book), artifacts=world.context.artifacts,
    )  # fmt: skip
    browser = world.browser(create_app(context), raise_server_exceptions=False)
    browser.sign_in(buyer)
    page = browser.post(f"/orders/{order}/buy")  # the purchase is made; storing its receipt fails
    assert page.status_code == 500
    assert "not something you did" in page.text and "tell the operator the reference" in page.text
    assert "Traceback" not in page.text and "sqlite3" not in page.text
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert context.refusals["internal_error"] == 1


async def _closed_book() -> object:
    from pervasive.web import ReceiptBook

    book = ReceiptBook(":memory:")
    book.close()
    return book


# -- selling -----------------------------------------------------------------------------


def test_listing_needs_a_signed_in_seller(world: WebWorld) -> None:
    browser = world.browser()
    page = browser.get("/sell")
    assert page.url.path == "/sign-in" and "Sign in with your account to sell" in page.text
    assert 'name="next" value="/sell"' in page.text


def test_wrong_fields_are_explained_next_to_them_and_the_form_is_refilled(world: WebWorld) -> None:
    seller = world.account("seller")
    browser = world.browser()
    browser.sign_in(seller)
    page = browser.post("/sell", _order_form(world, price="1,5", year="99", make="Ferrari"))
    assert page.status_code == 400
    assert 'id="price-error"' in page.text and "at most one dot" in page.text
    assert 'id="year-error"' in page.text and "four digits" in page.text
    assert 'id="make-error"' not in page.text
    assert 'value="Ferrari"' in page.text and 'value="1,5"' in page.text
    assert world.run(world.factory.orders_of_seller, seller.address) == []


def test_a_listed_item_is_on_the_chain_for_sale_and_on_the_sellers_page(world: WebWorld) -> None:
    seller = world.account("seller")
    browser = world.browser()
    browser.sign_in(seller)
    page = browser.post("/sell", _order_form(world, price="1.5", make="Volvo"))
    assert page.status_code == 200 and "Listed Volvo alpha (2019) as sale order" in page.text
    [order] = world.run(world.factory.orders_of_seller, seller.address)
    [item] = world.run(world.factory.items, [order])
    assert (item.make, item.model, item.year, item.serial) == ("Volvo", "alpha", 2019, "4AA6")
    assert item.price == 1_500_000_000_000_000_000 and item.seller == seller.address
    assert item.warehouse == world.warehouse.address
    assert f'<tr data-order="{order}" data-status="listed">' in page.text
    listing = world.browser().get("/")
    assert f'data-order="{order}"' in listing.text and "1.5 ETH" in listing.text
    details = world.browser().get(f"/orders/{order}")
    assert 'data-field="price" data-wei="1500000000000000000"' in details.text
    assert 'id="buy-sign-in"' in details.text  # not signed in: the form is offered after sign-in


def test_the_first_seller_of_a_chain_deploys_the_factory(tmp_path: Path, artifacts: Path) -> None:
    with web_world(tmp_path / "home", artifacts) as fresh:
        empty = fresh.context
        context = WebContext(
            fresh.settings, fresh.ledger, fresh.keystore,
            fresh.run(_empty_book), fresh.context.receipts,
            artifacts=empty.artifacts,
        )  # fmt: skip
        seller = fresh.account("seller")
        browser = fresh.browser(create_app(context))
        assert "Nothing is for sale" in browser.get("/").text
        browser.sign_in(seller)
        page = browser.post("/sell", _order_form(fresh))
        assert "Listed Tesla alpha" in page.text
        chain_id = fresh.ledger.chain_id
        assert fresh.portal.call(context.book.get, chain_id, "sale_order_factory") is not None
        [order] = fresh.run(context.market.page)[0]
        assert order.seller == seller.address and order.price == 1_500_000_000_000_000_000


async def _empty_book() -> object:
    from pervasive.contracts import DeploymentBook

    return DeploymentBook(":memory:")


def test_the_dashboards_routes_are_mounted_and_linked(world: WebWorld) -> None:
    async def board(request: Request) -> Response:
        return PlainTextResponse("the dashboard")

    context = WebContext(
        world.settings, world.ledger, world.keystore, world.context.book, world.context.receipts,
        artifacts=world.context.artifacts, dashboard=[Route("/dashboard", board)],
    )  # fmt: skip
    browser = world.browser(create_app(context))
    assert 'id="nav-dashboard"' in browser.get("/").text
    answer = browser.get("/dashboard")
    assert answer.text == "the dashboard"
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert 'id="nav-dashboard"' not in world.browser().get("/").text


def test_sign_in_sends_back_only_to_this_site() -> None:
    assert local_path("/orders/0xab?x=1") == "/orders/0xab?x=1"
    for outside in ("//evil.example/", "https://evil.example/", "/\\evil.example", "", None):
        assert local_path(outside) == "/"
