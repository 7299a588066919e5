# pragma version ~=0.4.3
"""
@title Payment: an escrow released to the supplier by the container's delivery confirmation
@license Apache-2.0
@notice Paper 001's Payment contract (Fig. 1). The retailer escrows the price of a
        shipment's goods for its supplier and names the container that will confirm the
        delivery. The container's signed `delivery` reading reaches the contract through
        the pervasive-contract service (an MQTT binding; a container that was offline
        delivers it later from its outbox): the service's operator account calls
        `confirm_delivery(shipment, device)`, which releases the escrow to the supplier,
        once. Records live in this contract's database C_d under
        keccak256(abi_encode(record name, shipment)): payer(address), supplier(address),
        container(bytes32: keccak256 of the device id), price(uint256), released(bool).
        Checks-effects-interactions: the release is recorded before the transfer.
"""

MAX_ID: constant(uint256) = 32
MAX_DEVICE: constant(uint256) = 128


interface ContractDatabase:
    def get_uint(key: bytes32) -> uint256: view
    def set_uint(key: bytes32, new_value: uint256): nonpayable
    def get_address(key: bytes32) -> address: view
    def set_address(key: bytes32, new_value: address): nonpayable
    def get_bool(key: bytes32) -> bool: view
    def set_bool(key: bytes32, new_value: bool): nonpayable
    def get_bytes32(key: bytes32) -> bytes32: view
    def set_bytes32(key: bytes32, new_value: bytes32): nonpayable


event EscrowOpened:
    key: indexed(bytes32)
    shipment: String[MAX_ID]
    payer: address
    supplier: address
    container: String[MAX_DEVICE]
    price: uint256

event DeliveryConfirmed:
    key: indexed(bytes32)
    shipment: String[MAX_ID]
    container: String[MAX_DEVICE]

event PaymentReleased:
    key: indexed(bytes32)
    shipment: String[MAX_ID]
    supplier: address
    amount: uint256


DATABASE: public(immutable(address))
OPERATOR: public(immutable(address))


@deploy
def __init__(database: address, operator: address):
    assert database != empty(address), "the contract database may not be the zero address"
    assert operator != empty(address), "the operator may not be the zero address"
    DATABASE = database
    OPERATOR = operator


@internal
@pure
def _record(name: String[16], id: String[MAX_ID]) -> bytes32:
    # the C_d key rule every reader of the records shares (the CLI too)
    return keccak256(abi_encode(name, id))


@payable
@external
def open_escrow(shipment: String[MAX_ID], supplier: address, container: String[MAX_DEVICE]):
    """
    @notice Escrow msg.value for `supplier`, released when `container` confirms delivery.
    @param shipment The shipment's id (1-32 characters), one escrow per shipment.
    @param supplier Who is paid on delivery.
    @param container The device id whose delivery reading releases the escrow.
    """
    assert len(shipment) > 0, "a shipment id may not be empty"
    assert supplier != empty(address), "the supplier may not be the zero address"
    assert len(container) > 0, "name the container that confirms the delivery"
    assert msg.value > 0, "escrow the price: send some value"
    db: ContractDatabase = ContractDatabase(DATABASE)
    assert staticcall db.get_address(self._record("payer", shipment)) == empty(address), "an escrow for this shipment exists"
    extcall db.set_address(self._record("payer", shipment), msg.sender)
    extcall db.set_address(self._record("supplier", shipment), supplier)
    extcall db.set_bytes32(self._record("container", shipment), keccak256(container))
    extcall db.set_uint(self._record("price", shipment), msg.value)
    log EscrowOpened(key=keccak256(shipment), shipment=shipment, payer=msg.sender, supplier=supplier, container=container, price=msg.value)


@nonreentrant
@external
def confirm_delivery(shipment: String[MAX_ID], device: String[MAX_DEVICE]):
    """
    @notice The container `device` confirms delivery of `shipment`: pay its supplier, once.
    @dev Only the operator (the service that verified the device's signed reading) may call.
    @param shipment The shipment's id, from the reading.
    @param device The device id the reading was signed by.
    """
    assert msg.sender == OPERATOR, "only the operator may confirm a delivery"
    db: ContractDatabase = ContractDatabase(DATABASE)
    supplier: address = staticcall db.get_address(self._record("supplier", shipment))
    assert supplier != empty(address), "no escrow for this shipment"
    assert staticcall db.get_bytes32(self._record("container", shipment)) == keccak256(device), "not the shipment's container"
    assert not staticcall db.get_bool(self._record("released", shipment)), "payment already released"
    amount: uint256 = staticcall db.get_uint(self._record("price", shipment))
    extcall db.set_bool(self._record("released", shipment), True)
    key: bytes32 = keccak256(shipment)
    log DeliveryConfirmed(key=key, shipment=shipment, container=device)
    log PaymentReleased(key=key, shipment=shipment, supplier=supplier, amount=amount)
    send(supplier, amount)


@view
@external
def released(shipment: String[MAX_ID]) -> bool:
    """
    @notice Whether the escrow of `shipment` went to its supplier.
    @param shipment The shipment's id.
    """
    return staticcall ContractDatabase(DATABASE).get_bool(self._record("released", shipment))
