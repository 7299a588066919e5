# pragma version ~=0.4.3
"""
@title Sale order factory
@license Apache-2.0
@notice Creates sale orders (sale_order.vy, paper 004 Table 1) from an ERC-5202 blueprint,
        the seller being whoever calls `create`, and indexes them: every order, each
        seller's orders, each buyer's orders. An order reports its sale and its release
        through `record_sale` / `record_release`, which the factory accepts only from
        orders it created. `OrderCreated`, `OrderSold` and `OrderReleased` carry the order,
        seller and buyer indexed so one account can be followed for a dashboard.
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
    def details() -> Item: view


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


BLUEPRINT: public(immutable(address))

isOrder: public(HashMap[address, bool])
order_count: public(uint256)
order_at: public(HashMap[uint256, address])
seller_order_count: public(HashMap[address, uint256])
seller_order_at: public(HashMap[address, HashMap[uint256, address]])
buyer_order_count: public(HashMap[address, uint256])
buyer_order_at: public(HashMap[address, HashMap[uint256, address]])


@deploy
def __init__(blueprint: address):
    assert blueprint.is_contract, "the sale order blueprint must be deployed"
    BLUEPRINT = blueprint


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
    @param make The item's make (1-64 characters).
    @param model The item's model (1-64 characters).
    @param year The model year.
    @param price The price in wei (positive).
    @param serial The item's serial number (1-64 characters).
    @param warehouse The account of the warehouse that may release the item to its buyer.
    @return The new sale order's address.
    """
    assert len(make) > 0, "the make may not be empty"
    assert len(model) > 0, "the model may not be empty"
    assert len(serial) > 0, "the serial number may not be empty"
    assert price > 0, "the price must be positive"
    assert warehouse != empty(address), "the warehouse account may not be the zero address"
    order: address = create_from_blueprint(
        BLUEPRINT, make, model, year, price, serial, msg.sender, warehouse, self
    )
    self.isOrder[order] = True
    self.order_at[self.order_count] = order
    self.order_count += 1
    self.seller_order_at[msg.sender][self.seller_order_count[msg.sender]] = order
    self.seller_order_count[msg.sender] += 1
    log OrderCreated(order=order, seller=msg.sender, warehouse=warehouse, price=price)
    return order


@external
def record_sale(seller: address, buyer: address, price: uint256):
    """
    @notice Called by an order of this factory when it is bought: lists it for the buyer.
    @param seller The order's seller.
    @param buyer The account that bought it.
    @param price The price paid, in wei.
    """
    assert self.isOrder[msg.sender], "only a sale order of this factory may report a sale"
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
    assert self.isOrder[msg.sender], "only a sale order of this factory may report a release"
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
        out.append(self.order_at[start + i])
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
        assert self.isOrder[order], "not a sale order of this factory"
        out.append(staticcall SaleOrder(order).details())
    return out
