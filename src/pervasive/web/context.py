"""What the web app needs from the rest of the platform, in one object.

The composition root (``Platform``, a test, the benchmark) builds a
:class:`WebContext` and hands it to :func:`~pervasive.web.app.create_app`: the
settings, the ledger, the keystore sellers and buyers sign in with, the deployment
book where the sale-order factory is recorded, the known warehouse accounts, and the
dashboard's routes when the dashboard is mounted. Nothing here is global; two apps
in one process have two contexts.

Example::

    context = WebContext.build(settings, ledger)
    app = create_app(context)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from starlette.routing import BaseRoute

from pervasive.chain import Keystore, Ledger
from pervasive.config import Settings
from pervasive.contracts import DeploymentBook
from pervasive.errors import NotFound
from pervasive.web.market import Market
from pervasive.web.receipt_book import ReceiptBook
from pervasive.web.sessions import SessionStore

__all__ = ["WAREHOUSE_ACCOUNT_PREFIX", "KeystoreWarehouses", "WebContext"]

WAREHOUSE_ACCOUNT_PREFIX = "warehouse-"
"""Keystore accounts of warehouse doors (``pervasive device warehouse register`` names them so)."""


@dataclass
class WebContext:
    """Settings, ledger, keystore and stores of one web app."""

    settings: Settings
    ledger: Ledger
    keystore: Keystore
    book: DeploymentBook
    """Where the sale-order factory is recorded (deployed by the first seller if absent)."""
    receipts: ReceiptBook
    """The verified receipts (wallet receipts exist nowhere else)."""
    artifacts: Path | None = None
    """The compiled-contract cache folder."""
    warehouses: Mapping[str, str] = field(default_factory=dict)
    """Known warehouse accounts, name -> address, offered on the seller's form."""
    dashboard: Sequence[BaseRoute] = ()
    """The dashboard's routes (``dashboard_routes(feed)``), mounted and linked when given."""
    cloudevents: Sequence[BaseRoute] = ()
    """The CloudEvents stream's routes (``cloudevents_routes(store)``), mounted when given."""
    refusals: Counter[str] = field(default_factory=Counter)
    """Refused requests by reason (``csrf``, ``wrong_password``, ``already_sold``, ...)."""
    sessions: SessionStore = field(init=False)
    market: Market = field(init=False)
    _owned: list[Callable[[], None]] = field(init=False, default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.sessions = SessionStore(self.settings.web.session_minutes * 60)
        self.market = Market(self.ledger, self.book, artifacts=self.artifacts)

    @classmethod
    def build(
        cls,
        settings: Settings,
        ledger: Ledger,
        *,
        keystore: Keystore | None = None,
        book: DeploymentBook | None = None,
        warehouses: Mapping[str, str] | None = None,
        dashboard: Sequence[BaseRoute] = (),
        cloudevents: Sequence[BaseRoute] = (),
    ) -> WebContext:
        """A context on the data directory's files: keystore, deployments, receipts, artifacts.

        ``book``: the platform's deployment book when it has one open (else this context
        opens ``<home>/deployments.sqlite`` itself and closes it in :meth:`close`).

        Example: ``WebContext.build(settings, ledger, book=platform.deployments())``.
        """
        context = cls(
            settings=settings,
            ledger=ledger,
            keystore=keystore or Keystore(settings.path("keystore")),
            book=book or DeploymentBook(settings.path("deployments.sqlite")),
            receipts=ReceiptBook(settings.path("web", "receipts.sqlite")),
            artifacts=settings.path("artifacts"),
            warehouses=warehouses if warehouses is not None else {},
            dashboard=tuple(dashboard),
            cloudevents=tuple(cloudevents),
        )
        context._owned = [context.receipts.close] + ([] if book else [context.book.close])
        return context

    def close(self) -> None:
        """Close what :meth:`build` opened (the receipt book, the deployment book if its own)."""
        for close in self._owned:
            close()
        self._owned = []


class KeystoreWarehouses(Mapping[str, str]):
    """The warehouse accounts of a keystore, name -> address, read again at each look.

    A door registered while the web app runs is offered on the next seller's form.

    Example: ``WebContext.build(settings, ledger, warehouses=KeystoreWarehouses(keystore))``.
    """

    def __init__(self, keystore: Keystore) -> None:
        self._keystore = keystore

    def _names(self) -> list[str]:
        return [n for n in self._keystore.names() if n.startswith(WAREHOUSE_ACCOUNT_PREFIX)]

    def __getitem__(self, name: str) -> str:
        if not name.startswith(WAREHOUSE_ACCOUNT_PREFIX):
            raise KeyError(name)
        try:
            return self._keystore.address_of(name)
        except NotFound:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())
