# pragma version ~=0.4.3
"""
@title Sale order
@license Apache-2.0
@notice One item for sale (paper 004, section 5.3, Table 1): created with make, model,
        year, price (wei) and serial number, the seller as owner and (our addition) the
        warehouse account that may release the sold item. `buy()` pays exactly the price
        straight to the seller; `verifyOwnership(buyer)` is what the warehouse device asks
        before it opens the door; `release(buyer)` is sent by the warehouse account once,
        so one receipt opens one door once.
        Created by sale_order_factory.vy from an ERC-5202 blueprint (the constructor runs,
        so the item's fixed fields are immutables, not storage); the order tells its
        factory of its sale and release so the factory can list a buyer's orders.
        Deployed directly (factory = empty address) it works alone, without the lists.
        Creating an order costs mostly the deposit of its runtime code (200 gas a byte),
        so the item's text fields have no getters of their own: getItem() and details()
        return them.
"""

MAX_TEXT: constant(uint256) = 64


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


interface Factory:
    def record_sale(seller: address, buyer: address, price: uint256): nonpayable
    def record_release(seller: address, buyer: address, warehouse: address): nonpayable


event Sold:
    buyer: indexed(address)
    seller: indexed(address)
    price: uint256


event Released:
    buyer: indexed(address)
    warehouse: indexed(address)


make: immutable(String[MAX_TEXT])
model: immutable(String[MAX_TEXT])
year: immutable(uint256)
price: public(immutable(uint256))
serial: immutable(String[MAX_TEXT])
owner: public(immutable(address))
warehouse: public(immutable(address))
factory: public(immutable(address))

buyer: public(address)
released: public(bool)


@deploy
def __init__(
    _make: String[MAX_TEXT],
    _model: String[MAX_TEXT],
    _year: uint256,
    _price: uint256,
    _serial: String[MAX_TEXT],
    _seller: address,
    _warehouse: address,
    _factory: address,
):
    assert len(_make) > 0, "the make may not be empty"
    assert len(_model) > 0, "the model may not be empty"
    assert len(_serial) > 0, "the serial number may not be empty"
    assert _price > 0, "the price must be positive"
    assert _seller != empty(address), "the seller may not be the zero address"
    assert _warehouse != empty(address), "the warehouse account may not be the zero address"
    make = _make
    model = _model
    year = _year
    price = _price
    serial = _serial
    owner = _seller
    warehouse = _warehouse
    factory = _factory


@external
@payable
@nonreentrant
def buy():
    """
    @notice Buy the item for exactly its price; the ether goes straight to the seller.
    @dev Checks, then effects (the buyer is recorded), then interactions (the factory's
         list, the payment). A seller whose account refuses ether makes the purchase fail
         as a whole, with a reason.
    """
    assert self.buyer == empty(address), "this item is already sold"
    assert msg.sender != owner, "the seller cannot buy their own item"
    assert msg.value == price, "send exactly the item's price (getItem shows it)"
    self.buyer = msg.sender
    if factory != empty(address):
        extcall Factory(factory).record_sale(owner, msg.sender, msg.value)
    paid: bool = raw_call(owner, b"", value=msg.value, revert_on_failure=False)
    assert paid, "paying the seller failed: the seller's account does not accept ether"
    log Sold(buyer=msg.sender, seller=owner, price=msg.value)


@external
@nonreentrant
def release(_buyer: address):
    """
    @notice Record that the warehouse handed the item to its buyer (opens the door once).
    @dev Only the order's warehouse account, only for the buyer, only once.
    @param _buyer The buyer named on the receipt the warehouse scanned.
    """
    assert msg.sender == warehouse, "only the order's warehouse account may release it"
    assert self.buyer != empty(address), "the item is not sold yet"
    assert _buyer == self.buyer, "this account did not buy the item"
    assert not self.released, "the item was already released"
    self.released = True
    if factory != empty(address):
        extcall Factory(factory).record_release(owner, _buyer, warehouse)
    log Released(buyer=_buyer, warehouse=warehouse)


@external
@view
def isSold() -> bool:
    """
    @notice Whether the item is sold.
    """
    return self.buyer != empty(address)


@external
@view
def getItem() -> (String[MAX_TEXT], String[MAX_TEXT], uint256, uint256, bool, address, address):
    """
    @notice The item as paper 004's Table 1 returns it.
    @return make, model, year, price (wei), sold, owner (the seller), buyer (zero until sold).
    """
    return make, model, year, price, self.buyer != empty(address), owner, self.buyer


@external
@view
def verifyOwnership(_buyer: address) -> bool:
    """
    @notice Whether `_buyer` bought the item and it was not released yet (the door's check).
    @param _buyer The buyer named on the scanned receipt.
    """
    return _buyer != empty(address) and _buyer == self.buyer and not self.released


@external
@view
def details() -> Item:
    """
    @notice Every field of the item in one call (what lists and the factory's batch read use).
    """
    return Item(
        make=make,
        model=model,
        year=year,
        price=price,
        serial=serial,
        seller=owner,
        warehouse=warehouse,
        buyer=self.buyer,
        sold=self.buyer != empty(address),
        released=self.released,
    )
