# pragma version ~=0.4.3
"""
@title Asset tracking: pay on delivery when a container reaches its retailer
@license Apache-2.0
@notice Paper 001's autonomous-execution example: "in the asset tracking use case, the
        sendMoney function will be executed if a container and a retailer share the
        same location". A payer opens a shipment with an escrow, the payee and the
        operator (the pervasive-contract service whose context trigger watches the
        devices). The operator calls sendMoney once per co-location episode with an
        idempotency key derived from that episode; a key is accepted once, ever, so a
        trigger that crashes between sending and recording can retry without paying
        twice. The payer may close the shipment and take back what is left.
        Checks-effects-interactions: every state change precedes the transfer, and the
        paying functions are nonreentrant.
"""

MAX_ID: constant(uint256) = 64


struct Shipment:
    id: String[MAX_ID]
    payer: address
    payee: address
    operator: address
    amount: uint256
    balance: uint256
    payments: uint256
    open: bool


event ShipmentOpened:
    key: indexed(bytes32)
    payer: indexed(address)
    payee: indexed(address)
    operator: address
    amount: uint256
    deposit: uint256
    id: String[MAX_ID]

event ShipmentFunded:
    key: indexed(bytes32)
    deposit: uint256
    balance: uint256

event MoneySent:
    key: indexed(bytes32)
    idempotency_key: indexed(bytes32)
    payee: indexed(address)
    amount: uint256
    payment: uint256

event ShipmentClosed:
    key: indexed(bytes32)
    refund: uint256


shipments: HashMap[bytes32, Shipment]
paid: public(HashMap[bytes32, bool])
shipment_count: public(uint256)


@internal
@pure
def _key(id: String[MAX_ID]) -> bytes32:
    assert len(id) > 0, "a shipment id may not be empty"
    return keccak256(id)


@payable
@external
def open_shipment(id: String[MAX_ID], payee: address, operator: address, amount: uint256):
    """
    @notice Open shipment `id`: escrow msg.value, pay `amount` to `payee` per delivery.
    @param id Unique shipment id (1-64 characters), never reused.
    @param payee Who receives each payment (the supplier or carrier).
    @param operator The only account allowed to call sendMoney (the trigger's service).
    @param amount Wei paid per delivery; the escrow must cover at least one.
    """
    key: bytes32 = self._key(id)
    assert self.shipments[key].payer == empty(address), "shipment id already used"
    assert payee != empty(address), "the payee may not be the zero address"
    assert operator != empty(address), "the operator may not be the zero address"
    assert amount > 0, "the amount per delivery must be positive"
    assert msg.value >= amount, "the deposit does not cover one delivery"
    self.shipments[key] = Shipment(
        id=id,
        payer=msg.sender,
        payee=payee,
        operator=operator,
        amount=amount,
        balance=msg.value,
        payments=0,
        open=True,
    )
    self.shipment_count += 1
    log ShipmentOpened(
        key=key, payer=msg.sender, payee=payee, operator=operator, amount=amount,
        deposit=msg.value, id=id
    )


@payable
@external
def fund(id: String[MAX_ID]):
    """
    @notice Add msg.value to the escrow of open shipment `id` (anyone may).
    @param id The shipment's id.
    """
    key: bytes32 = self._key(id)
    assert self.shipments[key].payer != empty(address), "unknown shipment"
    assert self.shipments[key].open, "shipment is closed"
    assert msg.value > 0, "send some value to fund the shipment"
    self.shipments[key].balance += msg.value
    log ShipmentFunded(key=key, deposit=msg.value, balance=self.shipments[key].balance)


@nonreentrant
@external
def sendMoney(id: String[MAX_ID], idempotency_key: bytes32):
    """
    @notice Pay one delivery of shipment `id` to its payee, once per `idempotency_key`.
    @dev Only the shipment's operator may call. Reverts with "already paid for this key"
         when the key was used before, by any shipment.
    @param id The shipment's id.
    @param idempotency_key Derived by the caller from the episode that triggers the payment.
    """
    key: bytes32 = self._key(id)
    entry: Shipment = self.shipments[key]
    assert entry.payer != empty(address), "unknown shipment"
    assert msg.sender == entry.operator, "only the shipment's operator may send money"
    assert entry.open, "shipment is closed"
    assert idempotency_key != empty(bytes32), "the idempotency key may not be zero"
    assert not self.paid[idempotency_key], "already paid for this key"
    assert entry.balance >= entry.amount, "escrow exhausted: fund the shipment"
    self.paid[idempotency_key] = True
    self.shipments[key].balance = entry.balance - entry.amount
    self.shipments[key].payments = entry.payments + 1
    log MoneySent(
        key=key, idempotency_key=idempotency_key, payee=entry.payee, amount=entry.amount,
        payment=entry.payments + 1
    )
    send(entry.payee, entry.amount)


@nonreentrant
@external
def close_shipment(id: String[MAX_ID]):
    """
    @notice Close shipment `id` and refund its remaining escrow. Only its payer may.
    @param id The shipment's id.
    """
    key: bytes32 = self._key(id)
    entry: Shipment = self.shipments[key]
    assert entry.payer != empty(address), "unknown shipment"
    assert msg.sender == entry.payer, "only the shipment's payer may close it"
    assert entry.open, "shipment is closed"
    self.shipments[key].open = False
    self.shipments[key].balance = 0
    log ShipmentClosed(key=key, refund=entry.balance)
    if entry.balance > 0:
        send(entry.payer, entry.balance)


@view
@external
def shipment(id: String[MAX_ID]) -> Shipment:
    """
    @notice The shipment `id`; reverts with "unknown shipment" otherwise.
    @param id The shipment's id.
    """
    entry: Shipment = self.shipments[keccak256(id)]
    assert entry.payer != empty(address), "unknown shipment"
    return entry
