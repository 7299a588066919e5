# pragma version ~=0.4.3
"""
@title Sale order factory
@license Apache-2.0
@notice Creates sale orders (paper 004 Table 1), the seller being whoever calls `create`, and
        indexes them: every order, each seller's orders, each buyer's orders.
        An order is an EIP-1167 minimal proxy (45 bytes) of one implementation
        (sale_order.vy), which this factory creates from an ERC-5202 blueprint when it is
        deployed; `create` makes the proxy and initializes it in the same call, and only
        this factory may initialize a proxy of that implementation. So an address is an
        order of this factory exactly when its code is that proxy and it holds an item: no
        `isOrder` table is written. Proxies are made with CREATE2 and salt = their index, so
        the global list is computed, not stored; creating an order writes only its own item
        and the seller's list.
        An order reports its sale and its release through `record_sale` / `record_release`,
        which the factory accepts only from its proxies. `OrderCreated`, `OrderSold` and
        `OrderReleased` carry the order, seller and buyer indexed so one account can be
        followed for a dashboard.
        Lists are read in pages of at most MAX_PAGE entries: no loop runs over a list a
        user can grow.
"""

MAX_TEXT: constant(uint256) = 64
MAX_PAGE: constant(uint256) = 100


struct Item:
    make: String[MAX_TEXT]
    model: String[MAX_TEXT]
    year: uint256
    price: uint256
    serial: String[MAX_TEXT]
    seller: address
    warehouse: address
    buyer: address
    sold: bool
    released: bool


interface SaleOrder:
    def initialize(
        make: String[MAX_TEXT],
        model: String[MAX_TEXT],
        year: uint256,
        price: uint256,
        serial: String[MAX_TEXT],
        seller: address,
        warehouse: address,
    ): nonpayable
    def details() -> Item: view
    def owner() -> address: view


event OrderCreated:
    order: indexed(address)
    seller: indexed(address)
    warehouse: indexed(address)
    price: uint256


event OrderSold:
    order: indexed(address)
    seller: indexed(address)
    buyer: indexed(address)
    price: uint256


event OrderReleased:
    order: indexed(address)
    seller: indexed(address)
    buyer: indexed(address)
    warehouse: address


# EIP-1167: the proxy's init code is LOADER ++ PREFIX ++ implementation ++ SUFFIX, and the
# code it leaves (every order's code) PREFIX ++ implementation ++ SUFFIX
EIP1167_LOADER: constant(bytes9) = 0x602d3d8160093d39f3
EIP1167_PREFIX: constant(bytes10) = 0x363d3d373d3d3d363d73
EIP1167_SUFFIX: constant(bytes15) = 0x5af43d82803e903d91602b57fd5bf3

BLUEPRINT: public(immutable(address))
IMPLEMENTATION: public(immutable(address))
# keccak256 of an order's code and of the init code CREATE2 hashes into its address
ORDER_CODEHASH: immutable(bytes32)
ORDER_INITCODE_HASH: immutable(bytes32)

order_count: public(uint256)
seller_order_count: public(HashMap[address, uint256])
seller_order_at: public(HashMap[address, HashMap[uint256, address]])
buyer_order_count: public(HashMap[address, uint256])
buyer_order_at: public(HashMap[address, HashMap[uint256, address]])


@deploy
def __init__(blueprint: address):
    """
    @notice Create the orders' implementation from `blueprint` (sale_order.vy's init code).
    @param blueprint An ERC-5202 blueprint of sale_order.vy.
    """
    assert blueprint.is_contract, "the sale order blueprint must be deployed"
    BLUEPRINT = blueprint
    # without an item the order contract becomes the implementation of its creator
    implementation: address = create_from_blueprint(
        blueprint,
        empty(String[MAX_TEXT]),
        empty(String[MAX_TEXT]),
        empty(uint256),
        empty(uint256),
        empty(String[MAX_TEXT]),
        empty(address),
        empty(address),
    )
    IMPLEMENTATION = implementation
    target: bytes20 = convert(implementation, bytes20)
    ORDER_CODEHASH = keccak256(concat(EIP1167_PREFIX, target, EIP1167_SUFFIX))
    ORDER_INITCODE_HASH = keccak256(concat(EIP1167_LOADER, EIP1167_PREFIX, target, EIP1167_SUFFIX))


@internal
@view
def _order_at(index: uint256) -> address:
    # the CREATE2 address of the order with salt `index` (EIP-1014)
    digest: bytes32 = keccak256(
        concat(0xff, convert(self, bytes20), convert(index, bytes32), ORDER_INITCODE_HASH)
    )
    return convert(convert(digest, uint256) & (2**160 - 1), address)


@internal
@view
def _is_order(order: address) -> bool:
    # only this factory can give a proxy of IMPLEMENTATION its item (sale_order.initialize)
    if order.codehash != ORDER_CODEHASH:
        return False
    return staticcall SaleOrder(order).owner() != empty(address)


@external
def create(
    make: String[MAX_TEXT],
    model: String[MAX_TEXT],
    year: uint256,
    price: uint256,
    serial: String[MAX_TEXT],
    warehouse: address,
) -> address:
    """
    @notice Put an item up for sale; the caller is its seller (the order's owner).
    @dev The order checks the item (sale_order.vy `_set_item`) and reverts with the reason.
    @param make The item's make (1-64 bytes of UTF-8).
    @param model The item's model (1-64 bytes).
    @param year The model year (0-9999).
    @param price The price in wei (positive, below 2**96).
    @param serial The item's serial number (1-64 bytes).
    @param warehouse The account of the warehouse that may release the item to its buyer.
    @return The new sale order's address.
    """
    index: uint256 = self.order_count
    order: address = self._order_at(index)
    self.order_count = index + 1
    self.seller_order_at[msg.sender][self.seller_order_count[msg.sender]] = order
    self.seller_order_count[msg.sender] += 1
    created: address = create_minimal_proxy_to(IMPLEMENTATION, salt=convert(index, bytes32))
    assert created == order, "the order was not created at its computed address"
    extcall SaleOrder(order).initialize(make, model, year, price, serial, msg.sender, warehouse)
    log OrderCreated(order=order, seller=msg.sender, warehouse=warehouse, price=price)
    return order


@external
@view
def isOrder(order: address) -> bool:
    """
    @notice Whether `order` is a sale order this factory created.
    @param order Any address.
    """
    return self._is_order(order)


@external
@view
def order_at(index: uint256) -> address:
    """
    @notice The order created `index`-th (zero address past the last one).
    @param index From 0 to order_count - 1.
    """
    if index >= self.order_count:
        return empty(address)
    return self._order_at(index)


@external
def record_sale(seller: address, buyer: address, price: uint256):
    """
    @notice Called by an order of this factory when it is bought: lists it for the buyer.
    @param seller The order's seller.
    @param buyer The account that bought it.
    @param price The price paid, in wei.
    """
    # a proxy of IMPLEMENTATION runs only IMPLEMENTATION's code, which reports a sale or a
    # release only from an order holding an item: one this factory initialized
    assert (
        msg.sender.codehash == ORDER_CODEHASH
    ), "only a sale order of this factory may report a sale"
    self.buyer_order_at[buyer][self.buyer_order_count[buyer]] = msg.sender
    self.buyer_order_count[buyer] += 1
    log OrderSold(order=msg.sender, seller=seller, buyer=buyer, price=price)


@external
def record_release(seller: address, buyer: address, warehouse: address):
    """
    @notice Called by an order of this factory when its warehouse releases it.
    @param seller The order's seller.
    @param buyer The buyer the item was released to.
    @param warehouse The warehouse account that released it.
    """
    assert (
        msg.sender.codehash == ORDER_CODEHASH
    ), "only a sale order of this factory may report a release"
    log OrderReleased(order=msg.sender, seller=seller, buyer=buyer, warehouse=warehouse)


@internal
@view
def _page(count: uint256, start: uint256, limit: uint256) -> uint256:
    # how many entries a page starting at `start` holds (at most MAX_PAGE)
    if start >= count:
        return 0
    return min(min(count - start, limit), MAX_PAGE)


@external
@view
def orders(start: uint256, limit: uint256) -> DynArray[address, MAX_PAGE]:
    """
    @notice Every order in creation order, a page of at most 100 from `start`.
    @param start Index of the first order.
    @param limit At most this many (capped at 100).
    """
    out: DynArray[address, MAX_PAGE] = []
    for i: uint256 in range(self._page(self.order_count, start, limit), bound=MAX_PAGE):
        out.append(self._order_at(start + i))
    return out


@external
@view
def seller_orders(seller: address, start: uint256, limit: uint256) -> DynArray[address, MAX_PAGE]:
    """
    @notice The orders `seller` created, a page of at most 100 from `start`.
    @param seller The seller.
    @param start Index of the first order.
    @param limit At most this many (capped at 100).
    """
    out: DynArray[address, MAX_PAGE] = []
    count: uint256 = self._page(self.seller_order_count[seller], start, limit)
    for i: uint256 in range(count, bound=MAX_PAGE):
        out.append(self.seller_order_at[seller][start + i])
    return out


@external
@view
def buyer_orders(buyer: address, start: uint256, limit: uint256) -> DynArray[address, MAX_PAGE]:
    """
    @notice The orders `buyer` bought, a page of at most 100 from `start`.
    @param buyer The buyer.
    @param start Index of the first order.
    @param limit At most this many (capped at 100).
    """
    out: DynArray[address, MAX_PAGE] = []
    count: uint256 = self._page(self.buyer_order_count[buyer], start, limit)
    for i: uint256 in range(count, bound=MAX_PAGE):
        out.append(self.buyer_order_at[buyer][start + i])
    return out


@external
@view
def items(addresses: DynArray[address, MAX_PAGE]) -> DynArray[Item, MAX_PAGE]:
    """
    @notice The details of up to 100 orders of this factory in one call.
    @param addresses The orders (each must be an order of this factory).
    """
    out: DynArray[Item, MAX_PAGE] = []
    for order: address in addresses:
        assert order.codehash == ORDER_CODEHASH, "not a sale order of this factory"
        item: Item = staticcall SaleOrder(order).details()
        assert item.seller != empty(address), "not a sale order of this factory"
        out.append(item)
    return out
