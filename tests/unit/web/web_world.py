"""A web app on the embedded chain, driven through Starlette's TestClient from sync tests.

The chain, the stores and the app all live in one anyio blocking portal (an event loop
in a thread); every TestClient of the world sends its requests into that same loop
(``client.portal``), and async setup runs there too (:meth:`WebWorld.run`). Each test
makes its own accounts (:meth:`WebWorld.account`: a fresh funded key stored in the
keystore) and its own sale orders, so no test depends on another's state.

Example::

    seller = world.account("seller")
    browser = world.browser()
    browser.sign_in(seller)
    page = browser.post("/sell", {...})
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio.from_thread
import httpx2
from starlette.applications import Starlette
from starlette.testclient import TestClient

from pervasive.chain import ContractCall, Keystore, Ledger, Signer, open_ledger
from pervasive.config import Settings
from pervasive.contracts import DeploymentBook, SaleOrderFactory
from pervasive.web import ReceiptBook, WebContext, create_app

T = TypeVar("T")

PRICE = 2 * 10**18
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_names = itertools.count()


@dataclass(frozen=True)
class Account:
    """A keystore account of the world: its name, password and signer."""

    name: str
    password: str = field(repr=False)
    signer: Signer

    @property
    def address(self) -> str:
        return self.signer.address


class Browser:
    """One browser (its own cookies) on the world's app."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.token = ""

    def get(self, path: str, **kwargs: Any) -> httpx2.Response:
        response = self.client.get(path, **kwargs)
        self._remember(response)
        return response

    def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> httpx2.Response:
        if csrf and not self.token:
            self.get("/sign-in")
        form = {"csrf_token": self.token, **(data or {})} if csrf else (data or {})
        response = self.client.post(path, data=form, **kwargs)
        self._remember(response)
        return response

    def sign_in(self, account: Account) -> httpx2.Response:
        self.get("/sign-in")
        response = self.post("/sign-in", {"account": account.name, "password": account.password})
        assert response.status_code == 200, response.text
        assert f'data-account="{account.name}"' in response.text
        return response

    def _remember(self, response: httpx2.Response) -> None:
        found = (
            _CSRF.search(response.text)
            if "html" in response.headers.get("content-type", "")
            else None
        )
        if found:
            self.token = found[1]


@dataclass
class WebWorld:
    """The embedded chain, a deployed factory, a keystore and the web app over them."""

    portal: anyio.from_thread.BlockingPortal
    settings: Settings
    ledger: Ledger
    keystore: Keystore
    context: WebContext
    app: Starlette
    factory: SaleOrderFactory
    funder: Signer
    warehouse: Signer

    def run(self, function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run ``function(*args, **kwargs)`` in the world's event loop."""
        return self.portal.call(partial(function, *args, **kwargs))

    def browser(self, app: Starlette | None = None, **options: Any) -> Browser:
        """A fresh browser (no cookies) on the app, its requests in the world's loop."""
        client = TestClient(app or self.app, **{"base_url": "http://testserver", **options})
        client.portal = self.portal
        return Browser(client)

    def account(self, role: str = "user", *, ether: int = 100 * 10**18) -> Account:
        """A fresh key funded with ``ether`` wei, stored in the keystore under a new name."""
        name = f"{role}-{next(_names)}"
        password = f"pw-{name}-correct horse"
        signer = Signer.generate()
        self.keystore.store(name, signer, password)
        if ether:
            funding = ContractCall(to=signer.address, data=b"", value=ether)
            self.run(self.ledger.transactor(self.funder).transact, funding)
        return Account(name, password, signer)

    def list_item(self, seller: Account, *, price: int = PRICE, make: str = "Tesla") -> str:
        """A sale order created straight on the chain by ``seller``; its address."""
        factory = self.factory.with_signer(seller.signer)
        order = self.run(factory.create, make, "alpha", 2019, price, "4AA6", self.warehouse.address)
        return order.address


@contextmanager
def web_world(home: Path, artifacts: Path) -> Iterator[WebWorld]:
    """The world in a fresh portal; everything is closed afterwards."""
    settings = Settings(home=home)
    with anyio.from_thread.start_blocking_portal() as portal:
        ledger = portal.call(partial(open_ledger, settings, persist=False))
        try:
            book = portal.call(DeploymentBook, ":memory:")
            receipts = portal.call(ReceiptBook, ":memory:")
            funder = ledger.dev_signer(0)
            factory = portal.call(
                partial(SaleOrderFactory.open, ledger, funder, artifacts=artifacts, book=book)
            )
            keystore = Keystore(home / "keystore", kdf_iterations=2)
            context = WebContext(settings, ledger, keystore, book, receipts, artifacts=artifacts)
            yield WebWorld(
                portal=portal,
                settings=settings,
                ledger=ledger,
                keystore=keystore,
                context=context,
                app=create_app(context),
                factory=factory,
                funder=funder,
                warehouse=ledger.dev_signer(3),
            )
        finally:
            portal.call(ledger.close)


def csrf_token(html: str) -> str:
    """The CSRF token a page carries in its ``<meta>``."""
    found = _CSRF.search(html)
    assert found, "the page has no csrf-token meta"
    return found[1]
