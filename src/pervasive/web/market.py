"""The market as the web pages see it: sale orders on the chain, read and written.

A thin layer over :class:`~pervasive.contracts.sale_order.SaleOrderFactory` and
:class:`~pervasive.contracts.sale_order.SaleOrder` (paper 004 sections 4.1-4.4) that
answers the pages' questions (what is for sale, what did this seller list, what did
this buyer buy, when was it released) and turns every way a purchase can fail into a
:class:`~pervasive.web.refusals.WebRequestRefused` with words for the buyer. The factory
is found in the deployment book, or deployed by the first seller who lists an item.

Purchases of one order are serialised here, so a double click cannot send two
``buy()`` transactions; the chain refuses a second buyer anyway.

Example::

    market = Market(ledger, DeploymentBook(settings.path("deployments.sqlite")))
    item = await market.create(seller, draft)
    await market.buy(buyer, item.address)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pervasive.chain import Ledger, Receipt, Signer, TransactionRefused
from pervasive.contracts import DeploymentBook
from pervasive.contracts.sale_order import (
    SALE_ORDER_FACTORY,
    SaleEvent,
    SaleItem,
    SaleOrderFactory,
)
from pervasive.crypto import checksum_address
from pervasive.errors import InvalidInput, NotFound, TransactionReverted, TransactionTimeout
from pervasive.web.forms import SaleOrderDraft, format_eth
from pervasive.web.refusals import WebRequestRefused

__all__ = ["Market", "OrderStatus", "Status"]

Status = Literal["listed", "sold", "released"]
"""Where a sale order stands."""

_NO_FUNDS = ("insufficient funds", "enough balance", "insufficient balance")
"""How nodes say an account cannot pay (geth and anvil; py-evm)."""


@dataclass(frozen=True)
class OrderStatus:
    """A sale order's item with the blocks where it was sold and released."""

    item: SaleItem
    sold_block: int | None = None
    released_block: int | None = None

    @property
    def status(self) -> Status:
        """``listed``, ``sold`` or ``released``."""
        if self.item.released:
            return "released"
        return "sold" if self.item.sold else "listed"


@dataclass
class _History:
    sold_block: int | None = None
    released_block: int | None = None


class Market:
    """Sale orders on ``ledger``; the factory is looked up in ``book``."""

    def __init__(
        self, ledger: Ledger, book: DeploymentBook, *, artifacts: Path | None = None
    ) -> None:
        self.ledger = ledger
        self.book = book
        self.artifacts = artifacts
        self._factory: SaleOrderFactory | None = None
        self._factory_lock = asyncio.Lock()
        self._order_locks: dict[str, asyncio.Lock] = {}
        self._history: dict[str, _History] = {}
        self._scanned_to: int | None = None
        self._scanning: asyncio.Future[None] | None = None

    # -- the factory -------------------------------------------------------------------
    async def factory(self) -> SaleOrderFactory | None:
        """The deployed factory, or ``None`` while no seller has listed anything."""
        if self._factory is not None:
            return self._factory
        async with self._factory_lock:
            if self._factory is None:
                try:
                    self._factory = await SaleOrderFactory.find(
                        self.ledger, self.book, artifacts=self.artifacts
                    )
                except NotFound:
                    return None
            return self._factory

    async def _factory_for(self, signer: Signer) -> SaleOrderFactory:
        found = await self.factory()
        if found is not None:
            return found.with_signer(signer)
        async with self._factory_lock:
            if self._factory is None:
                self._factory = await SaleOrderFactory.open(
                    self.ledger, signer, artifacts=self.artifacts, book=self.book
                )
            return self._factory.with_signer(signer)

    # -- reads -------------------------------------------------------------------------
    async def page(self, page: int = 0, size: int = 50) -> tuple[list[SaleItem], int]:
        """Page ``page`` (newest first) of all sale orders and how many there are."""
        factory = await self.factory()
        if factory is None:
            return [], 0
        total = await factory.order_count()
        end = max(total - page * size, 0)
        start = max(end - size, 0)
        if end == 0:
            return [], total
        addresses = await factory.orders(start, end - start)
        items = await factory.items(addresses)
        return list(reversed(items)), total

    async def listings(self, page: int = 0, size: int = 50) -> tuple[list[SaleItem], int]:
        """The unsold items on page ``page`` of all orders (newest first), and the order count."""
        items, total = await self.page(page, size)
        return [item for item in items if not item.sold], total

    async def item(self, address: str) -> SaleItem:
        """The sale order at ``address``; 404 when there is none (or it is not ours)."""
        try:
            order = checksum_address(address)
        except InvalidInput as exc:
            raise WebRequestRefused(
                404, "unknown_order", f"{address!r} is not an address: check the link."
            ) from exc
        factory = await self.factory()
        try:
            if factory is None:
                raise NotFound("no factory yet")
            [item] = await factory.items([order])  # one call; NotFound unless an order of ours
        except NotFound as exc:
            raise WebRequestRefused(
                404,
                "unknown_order",
                f"There is no sale order at {order}: check the link or browse the orders for sale.",
            ) from exc
        return item

    async def orders_of_seller(self, seller: str) -> list[OrderStatus]:
        """The seller's orders, newest first, with when they were sold and released."""
        factory = await self.factory()
        if factory is None:
            return []
        return await self.statuses(await factory.orders_of_seller(seller))

    async def purchases(self, buyer: str) -> list[OrderStatus]:
        """The buyer's orders, newest first, with when they were sold and released."""
        factory = await self.factory()
        if factory is None:
            return []
        return await self.statuses(await factory.orders_of_buyer(buyer))

    async def statuses(self, addresses: Sequence[str]) -> list[OrderStatus]:
        """The orders at ``addresses``, newest first, with when they were sold and released."""
        factory = await self.factory()
        if factory is None or not addresses:
            return []
        items = await factory.items(addresses)
        history = await self._history_of(factory, items)
        return [_status(item, history) for item in reversed(items)]

    async def status_of(self, item: SaleItem) -> OrderStatus:
        """``item`` with the blocks where it was sold and released (from the factory's events)."""
        factory = await self.factory()
        if factory is None or not item.sold:
            return OrderStatus(item)
        return _status(item, await self._history_of(factory, [item]))

    async def _history_of(
        self, factory: SaleOrderFactory, items: Sequence[SaleItem]
    ) -> dict[str, _History]:
        """The sale and release blocks of ``items``: from memory, else from new events."""
        for _ in range(3):  # a scan already under way may have started before a new block
            if all(self._known(item) for item in items):
                break
            await self._scan(factory)
        return self._history

    def _known(self, item: SaleItem) -> bool:
        known = self._history.get(item.address)
        if not item.sold:
            return True
        if known is None or known.sold_block is None:
            return False
        return not item.released or known.released_block is not None

    async def _scan(self, factory: SaleOrderFactory) -> None:
        """Read the factory's events up to the head once; concurrent callers share one read."""
        if self._scanning is None:
            self._scanning = asyncio.ensure_future(self._scan_once(factory))
            self._scanning.add_done_callback(self._scan_done)
        await asyncio.shield(self._scanning)

    def _scan_done(self, scan: asyncio.Future[None]) -> None:
        self._scanning = None
        if not scan.cancelled():
            scan.exception()  # every waiter sees it; retrieved here for the loop's sake

    async def _scan_once(self, factory: SaleOrderFactory) -> None:
        head = await self.ledger.block_number()
        if self._scanned_to is None:
            deployed = self.book.get(self.ledger.chain_id, SALE_ORDER_FACTORY)
            self._scanned_to = (deployed.block if deployed else 0) - 1
        if head > self._scanned_to:
            for event in await factory.events(self._scanned_to + 1, head):
                self._remember(event)
            self._scanned_to = head

    def _remember(self, event: SaleEvent) -> None:
        known = self._history.setdefault(event.order, _History())
        if event.kind == "sold":
            known.sold_block = event.block
        elif event.kind == "released":
            known.released_block = event.block

    async def buy_calldata(self, address: str) -> bytes:
        """The calldata of ``buy()`` for a wallet to send (value = the price)."""
        factory = await self.factory()
        if factory is None:
            raise WebRequestRefused(404, "unknown_order", f"There is no sale order at {address}.")
        return factory.order(address).contract.encode("buy")

    # -- writes ------------------------------------------------------------------------
    async def create(self, seller: Signer, draft: SaleOrderDraft) -> SaleItem:
        """List ``draft`` as a new sale order from ``seller`` (deploying the factory if needed)."""
        factory = await self._factory_for(seller)
        try:
            order = await factory.create(
                draft.make, draft.model, draft.year, draft.price, draft.serial, draft.warehouse
            )
        except TransactionReverted as exc:
            raise WebRequestRefused(
                409, "create_reverted", f"The chain refused the sale order: {exc.reason}."
            ) from exc
        except TransactionRefused as exc:
            raise _refused_for_funds(seller, "list an item", exc) from exc
        return await order.item()

    async def buy(self, buyer: Signer, address: str) -> tuple[SaleItem, Receipt]:
        """Buy the item at ``address`` for ``buyer``: the item (as it was offered) and the receipt.

        Every refusal is explained:
        ``double_buy`` (409): ``buyer`` owns it already; ``already_sold`` (409): someone
        else does; ``own_item`` (409): the seller cannot buy; ``insufficient_funds``
        (409): the price (or the gas) is more than the balance; ``buy_reverted`` (409):
        the contract refused for another reason; ``buy_pending`` (504): sent, not mined yet.
        """
        async with self._order_locks.setdefault(address.lower(), asyncio.Lock()):
            item = await self.item(address)
            _check_can_buy(item, buyer.address)
            balance = await self.ledger.balance(buyer.address)
            if balance < item.price:
                raise WebRequestRefused(
                    409,
                    "insufficient_funds",
                    f"Insufficient funds: your account {buyer.address} holds "
                    f"{format_eth(balance)} ETH and this item costs {format_eth(item.price)} ETH "
                    "plus gas. Add funds to the account and try again.",
                )
            try:
                factory = await self._factory_for(buyer)
                return item, await factory.order(item.address).buy()
            except TransactionReverted as exc:
                _check_can_buy(await self.item(address), buyer.address)
                raise WebRequestRefused(
                    409, "buy_reverted", f"The sale order refused the purchase: {exc.reason}."
                ) from exc
            except TransactionRefused as exc:
                raise _refused_for_funds(buyer, "buy this item", exc) from exc
            except TransactionTimeout as exc:
                raise WebRequestRefused(
                    504,
                    "buy_pending",
                    "Your purchase was sent but is not mined yet: look at 'My purchases' "
                    "in a minute before trying again.",
                ) from exc


def _status(item: SaleItem, history: dict[str, _History]) -> OrderStatus:
    known = history.get(item.address, _History())
    return OrderStatus(item, known.sold_block, known.released_block)


def _check_can_buy(item: SaleItem, buyer: str) -> None:
    if item.sold and item.buyer == buyer:
        raise WebRequestRefused(
            409, "double_buy", "You bought this item already: here is your receipt."
        )
    if item.sold:
        raise WebRequestRefused(
            409, "already_sold", "This item is sold already: choose another one from the list."
        )
    if item.seller == buyer:
        raise WebRequestRefused(
            409, "own_item", "This is your own item: sign in with another account to buy it."
        )


def _refused_for_funds(signer: Signer, what: str, exc: TransactionRefused) -> WebRequestRefused:
    if any(words in str(exc).lower() for words in _NO_FUNDS):
        return WebRequestRefused(
            409,
            "insufficient_funds",
            f"Insufficient funds: your account {signer.address} cannot pay the gas to {what}. "
            "Add funds to the account and try again.",
        )
    return WebRequestRefused(
        503, "node_refused", f"The chain's node refused the transaction: {exc}."
    )
