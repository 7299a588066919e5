# pragma version ~=0.4.3
"""
@title Deliveries: the service runtime's test contract
@license Apache-2.0
@notice Counts how often each reading and request is applied, so that a test sees a
        double application as a number (applications above one), not as a revert.
"""

event Delivered:
    shipment: String[64]
    device: String[64]
    sequence: uint256

event Noted:
    shipment: String[64]
    device: String[64]
    amount: uint256

event Paid:
    key: indexed(bytes32)
    shipment: String[64]

operator: public(address)
deliveries: public(HashMap[String[64], uint256])
applications: public(HashMap[bytes32, uint256])
duplicates: public(uint256)
total: public(uint256)
notes: public(HashMap[String[64], uint256])
paid: public(HashMap[bytes32, bool])
payments: public(uint256)


@deploy
def __init__(operator: address):
    self.operator = operator


@external
def confirm_delivery(shipment: String[64], device: String[64], sequence: uint64):
    """
    @notice A delivery reading of `device` (its sequence number `sequence`).
    """
    assert msg.sender == self.operator, "only the operator"
    assert shipment != "refused", "refused shipment"
    key: bytes32 = keccak256(abi_encode(device, sequence))
    self.applications[key] += 1
    if self.applications[key] > 1:
        self.duplicates += 1
    self.deliveries[shipment] += 1
    self.total += 1
    log Delivered(shipment=shipment, device=device, sequence=convert(sequence, uint256))


@external
def note(shipment: String[64], device: String[64], amount: uint256):
    """
    @notice A note posted over REST by `device`.
    """
    assert msg.sender == self.operator, "only the operator"
    self.notes[shipment] += amount
    log Noted(shipment=shipment, device=device, amount=amount)


@external
def send_money(shipment: String[64], key: bytes32):
    """
    @notice Pay `shipment` once per episode key.
    """
    assert msg.sender == self.operator, "only the operator"
    assert not self.paid[key], "already paid for this key"
    self.paid[key] = True
    self.payments += 1
    log Paid(key=key, shipment=shipment)


@view
@external
def is_paid(key: bytes32) -> bool:
    """
    @notice Whether the episode `key` is paid.
    """
    return self.paid[key]
