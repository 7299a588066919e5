# pragma version ~=0.4.3
"""
@title Test logic v1 of a pervasive contract that keeps its records in its C_d
@license Apache-2.0
@notice Quotes (cost, carrier) and delivery confirmations, all stored in the contract
        database; v2 (shipping_v2.vy) reads what v1 wrote.
"""

interface ContractDatabase:
    def get_uint(key: bytes32) -> uint256: view
    def set_uint(key: bytes32, val: uint256): nonpayable
    def get_address(key: bytes32) -> address: view
    def set_address(key: bytes32, val: address): nonpayable
    def get_bool(key: bytes32) -> bool: view
    def set_bool(key: bytes32, val: bool): nonpayable

event CostQuoted:
    shipment: String[64]
    cost: uint256
    carrier: address

event Delivered:
    shipment: String[64]
    device: String[64]

database: public(ContractDatabase)
operator: public(address)


@deploy
def __init__(database: address, operator: address):
    """
    @notice Bind to contract database `database`; only `operator` quotes.
    """
    self.database = ContractDatabase(database)
    self.operator = operator


@internal
@pure
def _key(name: String[16], id: String[64]) -> bytes32:
    return keccak256(abi_encode(name, id))


@external
def quote(shipment: String[64], cost: uint256, carrier: address):
    """
    @notice Record the cost and carrier of `shipment` (operator only).
    """
    assert msg.sender == self.operator, "only the operator quotes"
    extcall self.database.set_uint(self._key("cost", shipment), cost)
    extcall self.database.set_address(self._key("carrier", shipment), carrier)
    log CostQuoted(shipment=shipment, cost=cost, carrier=carrier)


@external
def confirm_delivery(shipment: String[64], device: String[64]):
    """
    @notice Record that `device` confirmed the delivery of `shipment`.
    """
    extcall self.database.set_bool(self._key("delivered", shipment), True)
    log Delivered(shipment=shipment, device=device)


@view
@external
def cost(shipment: String[64]) -> uint256:
    """
    @notice The quoted cost of `shipment`.
    """
    return staticcall self.database.get_uint(self._key("cost", shipment))


@view
@external
def version() -> uint256:
    """
    @notice This logic's version.
    """
    return 1
