# pragma version ~=0.4.3
"""
@title Sale order
@license Apache-2.0
@notice One item for sale (paper 004, section 5.3, Table 1): make, model, year, price (wei)
        and serial number, the seller as owner and (our addition) the warehouse account that
        may release the sold item. `buy()` pays exactly the price straight to the seller;
        `verifyOwnership(buyer)` is what the warehouse device asks before it opens the door;
        `release(buyer)` is sent by the warehouse account once, so one receipt opens one door
        once.
        Each order is an EIP-1167 minimal proxy (45 bytes of code) that sale_order_factory.vy
        creates and, in the same call, gives its item with `initialize`. This contract is the
        implementation the proxies delegate to: the factory creates it once (constructed
        without an item, FACTORY = the factory), only FACTORY may initialize a proxy, once,
        and the implementation itself holds no item and can never be initialized or bought.
        Constructed with an item, it is a sale order on its own (FACTORY empty): not listed
        anywhere, the same rules otherwise.
        Storage is packed, since every slot a new order fills costs 22,100 gas: seller and
        price share a slot (a price fits in 96 bits: 2**96 wei is more ether than exists),
        warehouse, year and the three text lengths another, buyer and the released flag a
        third (written by the sale), and make, model and serial, concatenated, fill only the
        32-byte words they need.
"""

MAX_TEXT: constant(uint256) = 64
MAX_YEAR: constant(uint256) = 9999
MAX_PRICE: constant(uint256) = 2**96 - 1
TEXT_WORDS: constant(uint256) = 6  # 3 * MAX_TEXT bytes
ADDRESS_BITS: constant(uint256) = 160
ADDRESS_MASK: constant(uint256) = 2**160 - 1
YEAR_SHIFT: constant(uint256) = 160
MAKE_LENGTH_SHIFT: constant(uint256) = 176
MODEL_LENGTH_SHIFT: constant(uint256) = 184
SERIAL_LENGTH_SHIFT: constant(uint256) = 192


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


# the factory whose proxies may be initialized (empty for an order constructed on its own);
# immutables live in this contract's code, so every proxy reads the same values
FACTORY: immutable(address)
# this contract's own address: in a proxy `self` is the proxy, so `self == SELF` means the
# code runs on the implementation's (or a stand-alone order's) own storage
SELF: immutable(address)

# seller (bits 0-159) | price (160-255); zero until the order holds an item
head: uint256
# warehouse (0-159) | year (160-175) | make length (176-183) | model length (184-191)
# | serial length (192-199)
terms: uint256
# buyer (0-159) | released (bit 160); zero until sold
sale: uint256
# make ++ model ++ serial in UTF-8, only the words their length needs are written
text: bytes32[TEXT_WORDS]


@deploy
def __init__(
    _make: String[MAX_TEXT],
    _model: String[MAX_TEXT],
    _year: uint256,
    _price: uint256,
    _serial: String[MAX_TEXT],
    _seller: address,
    _warehouse: address,
):
    """
    @notice Without an item (every argument empty or zero, as the factory creates it): the
            implementation of the factory that creates it. With an item: a stand-alone order.
    """
    no_item: bool = (
        len(_make) + len(_model) + len(_serial) == 0
        and _year == 0
        and _price == 0
        and _seller == empty(address)
        and _warehouse == empty(address)
    )
    factory: address = empty(address)
    if no_item:
        factory = msg.sender
    else:
        self._set_item(_make, _model, _year, _price, _serial, _seller, _warehouse)
    FACTORY = factory
    SELF = self


@internal
def _set_item(
    _make: String[MAX_TEXT],
    _model: String[MAX_TEXT],
    _year: uint256,
    _price: uint256,
    _serial: String[MAX_TEXT],
    _seller: address,
    _warehouse: address,
):
    assert len(_make) > 0, "the make may not be empty"
    assert len(_model) > 0, "the model may not be empty"
    assert len(_serial) > 0, "the serial number may not be empty"
    assert _year <= MAX_YEAR, "the year is a whole number from 0 to 9999"
    assert _price > 0, "the price must be positive"
    assert _price <= MAX_PRICE, "the price is at most 2**96 - 1 wei (more ether than exists)"
    assert _seller != empty(address), "the seller may not be the zero address"
    assert _warehouse != empty(address), "the warehouse account may not be the zero address"
    self.head = convert(_seller, uint256) | (_price << ADDRESS_BITS)
    self.terms = (
        convert(_warehouse, uint256)
        | (_year << YEAR_SHIFT)
        | (len(_make) << MAKE_LENGTH_SHIFT)
        | (len(_model) << MODEL_LENGTH_SHIFT)
        | (len(_serial) << SERIAL_LENGTH_SHIFT)
    )
    # a zero word after the text lets extract32 read its last, partial word
    text: Bytes[3 * MAX_TEXT + 32] = concat(
        convert(_make, Bytes[MAX_TEXT]),
        convert(_model, Bytes[MAX_TEXT]),
        convert(_serial, Bytes[MAX_TEXT]),
        empty(bytes32),
    )
    words: uint256 = (len(_make) + len(_model) + len(_serial) + 31) // 32
    for i: uint256 in range(words, bound=TEXT_WORDS):
        self.text[i] = extract32(text, i * 32)


@external
def initialize(
    _make: String[MAX_TEXT],
    _model: String[MAX_TEXT],
    _year: uint256,
    _price: uint256,
    _serial: String[MAX_TEXT],
    _seller: address,
    _warehouse: address,
):
    """
    @notice Give a new proxy its item; the factory calls it in the call that creates the
            proxy, so nobody else ever can.
    @dev Only FACTORY, never on the implementation itself, only once.
    """
    assert msg.sender == FACTORY, "only the factory may initialize a sale order"
    assert self != SELF, "the implementation itself is never initialized"
    assert self.head == 0, "this sale order is already initialized"
    self._set_item(_make, _model, _year, _price, _serial, _seller, _warehouse)


@internal
@pure
def _address(word: uint256) -> address:
    return convert(word & ADDRESS_MASK, address)


@internal
@view
def _buyer() -> address:
    return self._address(self.sale)


@internal
@view
def _texts() -> (String[MAX_TEXT], String[MAX_TEXT], String[MAX_TEXT]):
    terms: uint256 = self.terms
    make_length: uint256 = (terms >> MAKE_LENGTH_SHIFT) & 255
    model_length: uint256 = (terms >> MODEL_LENGTH_SHIFT) & 255
    length: uint256 = make_length + model_length + ((terms >> SERIAL_LENGTH_SHIFT) & 255)
    words: bytes32[TEXT_WORDS] = empty(bytes32[TEXT_WORDS])
    for i: uint256 in range((length + 31) // 32, bound=TEXT_WORDS):
        words[i] = self.text[i]
    text: Bytes[3 * MAX_TEXT] = slice(
        concat(words[0], words[1], words[2], words[3], words[4], words[5]), 0, length
    )
    return (
        convert(slice(text, 0, make_length), String[MAX_TEXT]),
        convert(slice(text, make_length, model_length), String[MAX_TEXT]),
        convert(
            slice(text, make_length + model_length, length - make_length - model_length),
            String[MAX_TEXT],
        ),
    )


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
    head: uint256 = self.head
    seller: address = self._address(head)
    price: uint256 = head >> ADDRESS_BITS
    assert seller != empty(address), "this contract holds no item: buy from a sale order"
    assert self.sale == 0, "this item is already sold"
    assert msg.sender != seller, "the seller cannot buy their own item"
    assert msg.value == price, "send exactly the item's price (getItem shows it)"
    self.sale = convert(msg.sender, uint256)
    if FACTORY != empty(address):
        extcall Factory(FACTORY).record_sale(seller, msg.sender, msg.value)
    paid: bool = raw_call(seller, b"", value=msg.value, revert_on_failure=False)
    assert paid, "paying the seller failed: the seller's account does not accept ether"
    log Sold(buyer=msg.sender, seller=seller, price=msg.value)


@external
@nonreentrant
def release(_buyer: address):
    """
    @notice Record that the warehouse handed the item to its buyer (opens the door once).
    @dev Only the order's warehouse account, only for the buyer, only once.
    @param _buyer The buyer named on the receipt the warehouse scanned.
    """
    warehouse: address = self._address(self.terms)
    sale: uint256 = self.sale
    assert msg.sender == warehouse, "only the order's warehouse account may release it"
    assert sale != 0, "the item is not sold yet"
    assert _buyer == self._address(sale), "this account did not buy the item"
    assert sale >> ADDRESS_BITS == 0, "the item was already released"
    self.sale = sale | (1 << ADDRESS_BITS)
    if FACTORY != empty(address):
        extcall Factory(FACTORY).record_release(self._address(self.head), _buyer, warehouse)
    log Released(buyer=_buyer, warehouse=warehouse)


@external
@view
def isSold() -> bool:
    """
    @notice Whether the item is sold.
    """
    return self.sale != 0


@external
@view
def getItem() -> (String[MAX_TEXT], String[MAX_TEXT], uint256, uint256, bool, address, address):
    """
    @notice The item as paper 004's Table 1 returns it.
    @return make, model, year, price (wei), sold, owner (the seller), buyer (zero until sold).
    """
    make: String[MAX_TEXT] = empty(String[MAX_TEXT])
    model: String[MAX_TEXT] = empty(String[MAX_TEXT])
    serial: String[MAX_TEXT] = empty(String[MAX_TEXT])
    make, model, serial = self._texts()
    head: uint256 = self.head
    return (
        make,
        model,
        (self.terms >> YEAR_SHIFT) & 65535,
        head >> ADDRESS_BITS,
        self.sale != 0,
        self._address(head),
        self._buyer(),
    )


@external
@view
def verifyOwnership(_buyer: address) -> bool:
    """
    @notice Whether `_buyer` bought the item and it was not released yet (the door's check).
    @param _buyer The buyer named on the scanned receipt.
    """
    # buyer set and released clear: the whole word is the buyer
    return _buyer != empty(address) and self.sale == convert(_buyer, uint256)


@external
@view
def details() -> Item:
    """
    @notice Every field of the item in one call (what lists and the factory's batch read use).
    """
    make: String[MAX_TEXT] = empty(String[MAX_TEXT])
    model: String[MAX_TEXT] = empty(String[MAX_TEXT])
    serial: String[MAX_TEXT] = empty(String[MAX_TEXT])
    make, model, serial = self._texts()
    head: uint256 = self.head
    terms: uint256 = self.terms
    sale: uint256 = self.sale
    return Item(
        make=make,
        model=model,
        year=(terms >> YEAR_SHIFT) & 65535,
        price=head >> ADDRESS_BITS,
        serial=serial,
        seller=self._address(head),
        warehouse=self._address(terms),
        buyer=self._address(sale),
        sold=sale != 0,
        released=sale >> ADDRESS_BITS != 0,
    )


@external
@view
def price() -> uint256:
    """
    @notice The price in wei.
    """
    return self.head >> ADDRESS_BITS


@external
@view
def owner() -> address:
    """
    @notice The seller (paper 004: the order's owner); zero on the implementation.
    """
    return self._address(self.head)


@external
@view
def warehouse() -> address:
    """
    @notice The account that may release the sold item.
    """
    return self._address(self.terms)


@external
@view
def factory() -> address:
    """
    @notice The factory this order reports its sale and release to (zero for a stand-alone order).
    """
    return FACTORY


@external
@view
def buyer() -> address:
    """
    @notice The buyer (zero until sold).
    """
    return self._buyer()


@external
@view
def released() -> bool:
    """
    @notice Whether the item was released to its buyer.
    """
    return self.sale >> ADDRESS_BITS != 0
