"""Typed wrappers of ``vyper/sale_order.vy`` and ``vyper/sale_order_factory.vy`` (paper 004).

A seller creates one :class:`SaleOrder` per item through the :class:`SaleOrderFactory`
(deployed once per chain and recorded in the ``DeploymentBook``), naming the warehouse
account that may release it. Each order is its own contract, an EIP-1167 minimal proxy of
one implementation the factory created: about 190k gas, a quarter of what creating the full
order contract from a blueprint cost (``bench/sale_order_gas.py``). The buyer pays exactly
the price with :meth:`SaleOrder.buy` (the ether goes to the seller); the warehouse device
checks :meth:`SaleOrder.verify_ownership` and sends :meth:`SaleOrder.release` once. The factory
lists every order, a seller's and a buyer's orders, and its events feed the dashboard.
Inputs are checked before anything is signed (:class:`~pervasive.errors.InvalidInput`);
what only the chain decides comes back as :class:`~pervasive.errors.TransactionReverted`
with the contract's reason.

Example::

    factory = await SaleOrderFactory.open(ledger, seller, book=book)
    order = await factory.create("Tesla", "alpha", 2019, 50 * 10**18, "4AA6", warehouse)
    await order.with_signer(buyer).buy()
    await order.verify_ownership(buyer.address)          # True
    await order.with_signer(warehouse_signer).release(buyer.address)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pervasive.chain import Ledger, Receipt, Signer
from pervasive.contracts.agreement_factory import blueprint_deploy_code
from pervasive.contracts.compiler import Artifact, compile_contract
from pervasive.contracts.contract import Contract, DecodedEvent
from pervasive.contracts.deployments import DeploymentBook, deploy, ensure_deployed
from pervasive.contracts.handle import ContractHandle
from pervasive.crypto import checksum_address, keccak256
from pervasive.domain import check_account
from pervasive.errors import InternalError, InvalidInput, NotFound, TransactionReverted

__all__ = [
    "MAX_PRICE",
    "MAX_TEXT",
    "SALE_ORDER",
    "SALE_ORDER_BLUEPRINT",
    "SALE_ORDER_FACTORY",
    "SaleEvent",
    "SaleItem",
    "SaleOrder",
    "SaleOrderFactory",
]

SALE_ORDER = "sale_order"
"""The order contract's name: its source is ``vyper/sale_order.vy``."""
SALE_ORDER_FACTORY = "sale_order_factory"
"""The factory's name: its source ``vyper/sale_order_factory.vy`` and deployment record key."""
SALE_ORDER_BLUEPRINT = "sale_order_blueprint"
"""The deployment record key of the ERC-5202 blueprint of ``sale_order.vy``, from which the
factory creates the orders' implementation."""
MAX_TEXT = 64
"""Longest make, model or serial number, in UTF-8 bytes (the contracts' ``String[64]``)."""
MAX_PRICE = 2**96 - 1
"""Highest price in wei (the order packs it into 96 bits: 2**96 wei is more ether than exists)."""
_PAGE = 100
"""Most entries one list call of the factory returns (its ``MAX_PAGE``)."""
_ZERO = "0x" + "00" * 20

_VIEWS = (
    "isSold()",
    "getItem()",
    "verifyOwnership(address)",
    "details()",
    "price()",
    "owner()",
    "warehouse()",
    "factory()",
    "buyer()",
    "released()",
)


def _selector(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


@dataclass(frozen=True)
class SaleItem:
    """A sale order as ``getItem()`` shows it (paper 004, Table 1) plus what the factory knows."""

    address: str
    """The sale order's address."""
    make: str
    model: str
    year: int
    price: int
    """In wei."""
    serial: str
    seller: str
    """The order's owner (paper 004: the seller who created it)."""
    warehouse: str
    """The account allowed to release the item to its buyer."""
    buyer: str | None
    """``None`` until sold."""
    sold: bool
    released: bool


@dataclass(frozen=True)
class SaleEvent:
    """One event of the factory (an order created, sold or released), for lists and dashboards."""

    kind: Literal["created", "sold", "released"]
    order: str
    seller: str
    buyer: str | None
    """``None`` for ``created``."""
    price: int | None
    """The price in wei for ``created`` and ``sold``; ``None`` for ``released``."""
    block: int
    tx_hash: str
    log_index: int


def _item(address: str, raw: Sequence[Any]) -> SaleItem:
    buyer = checksum_address(raw[7])
    return SaleItem(
        address=checksum_address(address),
        make=str(raw[0]),
        model=str(raw[1]),
        year=int(raw[2]),
        price=int(raw[3]),
        serial=str(raw[4]),
        seller=checksum_address(raw[5]),
        warehouse=checksum_address(raw[6]),
        buyer=None if buyer == _ZERO else buyer,
        sold=bool(raw[8]),
        released=bool(raw[9]),
    )


def _sale_event(event: DecodedEvent) -> SaleEvent:
    args = event.args
    kind: Literal["created", "sold", "released"]
    if event.name == "OrderCreated":
        kind, buyer, price = "created", None, int(args["price"])
    elif event.name == "OrderSold":
        kind, buyer, price = "sold", str(args["buyer"]), int(args["price"])
    elif event.name == "OrderReleased":
        kind, buyer, price = "released", str(args["buyer"]), None
    else:
        raise InternalError(f"the sale order factory emitted an unknown event {event.name}")
    return SaleEvent(
        kind=kind,
        order=str(args["order"]),
        seller=str(args["seller"]),
        buyer=buyer,
        price=price,
        block=event.log.block_number,
        tx_hash=event.log.transaction_hash,
        log_index=event.log.log_index,
    )


def _text(what: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"the {what} may not be empty")
    if value != value.strip():
        raise InvalidInput(f"the {what} {value!r} has leading or trailing spaces: remove them")
    if not value.isprintable():
        raise InvalidInput(f"the {what} {value!r} holds control characters: use plain text")
    if len(value.encode("utf-8")) > MAX_TEXT:
        raise InvalidInput(f"the {what} is at most {MAX_TEXT} bytes of UTF-8, got {value!r}")
    return value


def _address(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"the {what} must be an address given as 0x and 40 hex digits")
    return check_account(value, what=what)


class SaleOrder(ContractHandle):
    """One deployed sale order; writes (``buy``, ``release``) are sent from ``signer``.

    A factory's order is a minimal proxy running the implementation's code, so the ABI
    (``NAME``'s artifact) is the same for every order, whether a proxy or a stand-alone one.
    """

    NAME = SALE_ORDER
    VIEW_SELECTORS: ClassVar[frozenset[bytes]] = frozenset(_selector(s) for s in _VIEWS)
    """4-byte selectors of the order's view functions (what a read-only device may call)."""
    RELEASE_SELECTOR: ClassVar[bytes] = _selector("release(address)")
    """The selector of ``release(address)``: the one write a warehouse device sends."""

    @classmethod
    def at(
        cls,
        ledger: Ledger,
        address: str,
        signer: Signer | None = None,
        *,
        artifacts: Path | None = None,
    ) -> Self:
        """The order at ``address`` (no check that code is there: reads raise ``NotFound``).

        Give ``artifacts`` (the data directory's artifact cache) so a device reads the
        compiled ABI instead of compiling. Example:
        ``SaleOrder.at(ledger, receipt.order, warehouse, artifacts=settings.path("artifacts"))``.
        """
        abi = cls.artifact(artifacts).abi
        return cls(Contract(ledger, _address(address, "sale order"), abi), signer)

    async def _read(self, name: str, *args: Any) -> Any:
        # an address without code answers every eth_call with nothing: say so, not "bug"
        function = self.contract.function(name, len(args))
        data = await self.contract.ledger.call(self.address, function.encode(args))
        if not data:
            raise NotFound(
                f"there is no sale order at {self.address} on chain "
                f"{self.contract.ledger.chain_id}: check the order address"
            )
        return function.decode_output(data)

    async def item(self) -> SaleItem:
        """Every field of the order in one call; :class:`NotFound` when no order is there.

        Example: ``(await order.item()).price``.
        """
        return _item(self.address, await self._read("details"))

    async def is_sold(self) -> bool:
        """Whether the item is sold (``isSold()``). Example: ``await order.is_sold()``."""
        return bool(await self._read("isSold"))

    async def verify_ownership(self, buyer: str) -> bool:
        """Whether ``buyer`` bought the item and it was not released yet (``verifyOwnership``).

        :class:`NotFound` when no order is at this address. Example:
        ``await order.verify_ownership(receipt.buyer)``.
        """
        return bool(await self._read("verifyOwnership", _address(buyer, "buyer")))

    async def price(self) -> int:
        """The price in wei. Example: ``await order.price()``."""
        return int(await self._read("price"))

    async def buy(self) -> Receipt:
        """Buy the item from ``signer`` (the buyer), paying exactly its price to the seller.

        Reverts (``TransactionReverted``) "this item is already sold" or "the seller cannot
        buy their own item"; nothing is paid then.

        Example: ``await order.with_signer(buyer).buy()``.
        """
        self._signer()
        return await self._send("buy", value=await self.price())

    async def release(self, buyer: str) -> Receipt:
        """Release the sold item to ``buyer``, from ``signer`` (the order's warehouse account).

        Only once per sale, only for the buyer; otherwise ``TransactionReverted`` with the
        contract's reason. Example: ``await order.with_signer(warehouse).release(buyer)``.
        """
        buyer = _address(buyer, "buyer")
        self._signer()
        await self._read("isSold")  # a release sent to an address without code would "succeed"
        return await self._send("release", buyer)


class SaleOrderFactory(ContractHandle):
    """The chain's sale order factory; ``create`` is sent from ``signer`` (the seller).

    The factory creates each order as an EIP-1167 minimal proxy of its implementation (made
    once, from the blueprint, when the factory is deployed) and initializes it in the same
    transaction; only the factory can initialize one, once.
    """

    NAME = SALE_ORDER_FACTORY
    MISSING = "open it once with SaleOrderFactory.open (the web app does on the first sale order)"

    def __init__(
        self,
        contract: Contract,
        signer: Signer | None = None,
        *,
        order_abi: tuple[dict[str, Any], ...] | None = None,
    ) -> None:
        super().__init__(contract, signer)
        self._order_abi = order_abi

    def with_signer(self, signer: Signer) -> Self:
        """The same factory, sending writes from ``signer``."""
        return type(self)(self.contract, signer, order_abi=self._order_abi)

    @classmethod
    async def find(
        cls, ledger: Ledger, book: DeploymentBook, *, artifacts: Path | None = None
    ) -> Self:
        """The factory deployed on this chain; :class:`NotFound` when there is none.

        Example: ``factory = await SaleOrderFactory.find(ledger, book)``.
        """
        found = await super().find(ledger, book, artifacts=artifacts)
        order_abi = compile_contract(SALE_ORDER, cache_dir=artifacts).abi
        return cls(found.contract, order_abi=order_abi)

    @classmethod
    async def open(
        cls,
        ledger: Ledger,
        signer: Signer,
        *,
        artifacts: Path | None = None,
        book: DeploymentBook | None = None,
    ) -> Self:
        """The factory recorded in ``book`` for this chain; blueprint and factory deployed if not.

        Deploying the factory also creates the orders' implementation from the blueprint. A
        changed order contract gives a new blueprint and so a new factory (and
        implementation); orders made earlier keep working with the old ones.

        Example: ``factory = await SaleOrderFactory.open(ledger, deployer, book=book)``.
        """
        book = book or DeploymentBook(":memory:")
        order = compile_contract(SALE_ORDER, cache_dir=artifacts)
        blueprint_artifact = Artifact(
            SALE_ORDER_BLUEPRINT, (), blueprint_deploy_code(order.bytecode), order.source_hash
        )
        blueprint, _ = await ensure_deployed(ledger, signer, blueprint_artifact, book)
        artifact = cls.artifact(artifacts)
        deployment, fresh = await ensure_deployed(ledger, signer, artifact, book, blueprint.address)
        contract = Contract(ledger, deployment.address, artifact.abi)
        if not fresh and checksum_address(await contract.call("BLUEPRINT")) != blueprint.address:
            deployment = await deploy(ledger, signer, artifact, blueprint.address)
            book.record(deployment)
            contract = Contract(ledger, deployment.address, artifact.abi)
        return cls(contract, signer, order_abi=order.abi)

    async def create(  # noqa: PLR0917 - the shared interface: Table 1's fields in order
        self, make: str, model: str, year: int, price: int, serial: str, warehouse: str
    ) -> SaleOrder:
        """Put an item up for sale from ``signer`` (the seller, who becomes its owner).

        ``warehouse`` is the account allowed to release the sold item. Example:
        ``order = await factory.create("Tesla", "alpha", 2019, 50 * 10**18, "4AA6", wh)``.
        """
        args = (
            _text("make", make),
            _text("model", model),
            _check_year(year),
            _check_price(price),
            _text("serial number", serial),
            _address(warehouse, "warehouse account"),
        )
        receipt = await self._send("create", *args)
        created = self.contract.events(receipt, "OrderCreated")
        if len(created) != 1:
            raise InternalError("creating a sale order emitted no OrderCreated event")
        return self.order(str(created[0].args["order"]))

    def order(self, address: str) -> SaleOrder:
        """A handle on the order at ``address`` (no check; see :meth:`is_order`).

        Example: ``await factory.order(address).with_signer(buyer).buy()``.
        """
        address = _address(address, "sale order")
        if self._order_abi is None:
            self._order_abi = compile_contract(SALE_ORDER).abi
        return SaleOrder(Contract(self.contract.ledger, address, self._order_abi), self.signer)

    async def is_order(self, address: str) -> bool:
        """Whether ``address`` is a sale order this factory created.

        Example: ``await factory.is_order(order.address)``.
        """
        return bool(await self.contract.call("isOrder", _address(address, "sale order")))

    async def order_count(self) -> int:
        """How many orders the factory created. Example: ``await factory.order_count()``."""
        return int(await self.contract.call("order_count"))

    async def orders(self, start: int = 0, count: int = 100) -> list[str]:
        """Up to ``count`` orders in creation order from index ``start``.

        Example: ``await factory.orders(0, 10)``.
        """
        return await self._pages("orders", (), start, count)

    async def orders_of_seller(self, seller: str) -> list[str]:
        """Every order ``seller`` created, oldest first.

        Example: ``await factory.orders_of_seller(seller.address)``.
        """
        seller = _address(seller, "seller")
        total = int(await self.contract.call("seller_order_count", seller))
        return await self._pages("seller_orders", (seller,), 0, total)

    async def orders_of_buyer(self, buyer: str) -> list[str]:
        """Every order ``buyer`` bought, oldest first.

        Example: ``await factory.orders_of_buyer(buyer.address)``.
        """
        buyer = _address(buyer, "buyer")
        total = int(await self.contract.call("buyer_order_count", buyer))
        return await self._pages("buyer_orders", (buyer,), 0, total)

    async def _pages(
        self, function: str, args: tuple[Any, ...], start: int, count: int
    ) -> list[str]:
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise InvalidInput(f"start must be a non-negative integer, got {start!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidInput(f"count must be a non-negative integer, got {count!r}")
        out: list[str] = []
        while len(out) < count:
            limit = min(_PAGE, count - len(out))
            page = await self.contract.call(function, *args, start + len(out), limit)
            out.extend(str(a) for a in page)
            if len(page) < limit:
                break
        return out

    async def items(self, addresses: Sequence[str]) -> list[SaleItem]:
        """The items of ``addresses`` (orders of this factory), one ``eth_call`` per 100.

        Raises :class:`NotFound` when an address is not an order of this factory.

        Example: ``await factory.items(await factory.orders_of_seller(seller.address))``.
        """
        checked = [_address(a, "sale order") for a in addresses]
        out: list[SaleItem] = []
        for first in range(0, len(checked), _PAGE):
            chunk = checked[first : first + _PAGE]
            try:
                raw = await self.contract.call("items", chunk)
            except TransactionReverted as exc:
                if exc.reason == "not a sale order of this factory":
                    missing = [a for a in chunk if not await self.is_order(a)]
                    raise NotFound(
                        f"not sale orders of the factory at {self.address}: {', '.join(missing)}"
                    ) from None
                raise
            out.extend(_item(a, r) for a, r in zip(chunk, raw, strict=True))
        return out

    async def events(
        self, from_block: int, to_block: int | None = None, *, account: str | None = None
    ) -> list[SaleEvent]:
        """The factory's events in blocks ``from_block..to_block`` (inclusive; default: head).

        Ordered by (block, log index). With ``account``, only the events whose order,
        seller or buyer it is (to follow one person or one order on a dashboard).

        Example: ``await factory.events(0, account=buyer.address)``.
        """
        followed = None if account is None else _address(account, "account")
        ledger = self.contract.ledger
        last = await ledger.block_number() if to_block is None else to_block
        if from_block < 0 or last < from_block:
            raise InvalidInput(f"no block range {from_block}..{last}: give from_block <= to_block")
        logs = await ledger.logs(self.address, from_block, last)
        events = [_sale_event(e) for e in self.contract.decode_logs(logs)]
        if followed is not None:
            events = [e for e in events if followed in (e.order, e.seller, e.buyer)]
        return sorted(events, key=lambda e: (e.block, e.log_index))


def _check_year(year: int) -> int:
    if isinstance(year, bool) or not isinstance(year, int) or not 0 <= year < 10_000:
        raise InvalidInput(f"the year is a whole number from 0 to 9999, got {year!r}")
    return year


def _check_price(price: int) -> int:
    if isinstance(price, bool) or not isinstance(price, int) or price <= 0:
        raise InvalidInput(f"the price is a positive number of wei, got {price!r}")
    if price >= 2**256:
        raise InvalidInput("the price does not fit in 256 bits")
    if price > MAX_PRICE:
        raise InvalidInput(
            f"the price is at most {MAX_PRICE} wei (2**96 - 1, more ether than exists), got {price}"
        )
    return price
