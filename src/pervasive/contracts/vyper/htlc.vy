# pragma version ~=0.4.3
"""
@title Hashed time-lock contract: the baseline atomic swap paper 003 compares against
@license Apache-2.0
@notice A sender locks ether for a recipient under sha256(preimage) == hashlock until
        `timelock` (a block timestamp). Before it, anyone holding the preimage may claim
        for the recipient (which reveals the preimage on-chain for the other leg of the
        swap); from it on, anyone may return the ether to the sender. The id is the hash
        of the lock's terms, so the counterparty can compute it before the lock is
        mined; an identical second lock is refused. A lock is packed in three storage
        slots (sender|timelock|state, recipient|amount, hashlock) so the baseline is
        not made to look worse by wasted storage. Checks-effects-interactions.
"""

PENDING: constant(uint256) = 1
CLAIMED: constant(uint256) = 2
REFUNDED: constant(uint256) = 3
ADDRESS_BITS: constant(uint256) = 160
ADDRESS_MASK: constant(uint256) = 2**160 - 1
TIMELOCK_BITS: constant(uint256) = 64
MAX_AMOUNT: constant(uint256) = 2**96 - 1


struct Lock:
    sender: address
    recipient: address
    amount: uint256
    hashlock: bytes32
    timelock: uint256
    state: uint256


event Locked:
    id: indexed(bytes32)
    sender: indexed(address)
    recipient: indexed(address)
    amount: uint256
    hashlock: bytes32
    timelock: uint256

event Claimed:
    id: indexed(bytes32)
    preimage: bytes32

event Refunded:
    id: indexed(bytes32)


# sender | timelock << 160 | state << 224
header: HashMap[bytes32, uint256]
# recipient | amount << 160
payout: HashMap[bytes32, uint256]
hashlocks: HashMap[bytes32, bytes32]


@internal
@view
def _lock(id: bytes32) -> Lock:
    head: uint256 = self.header[id]
    pay: uint256 = self.payout[id]
    return Lock(
        sender=convert(convert(head & ADDRESS_MASK, uint160), address),
        recipient=convert(convert(pay & ADDRESS_MASK, uint160), address),
        amount=pay >> ADDRESS_BITS,
        hashlock=self.hashlocks[id],
        timelock=(head >> ADDRESS_BITS) & (2**TIMELOCK_BITS - 1),
        state=head >> (ADDRESS_BITS + TIMELOCK_BITS),
    )


@internal
def _settle(id: bytes32, entry: Lock, state: uint256):
    self.header[id] = (
        convert(convert(entry.sender, uint160), uint256)
        | (entry.timelock << ADDRESS_BITS)
        | (state << (ADDRESS_BITS + TIMELOCK_BITS))
    )


@external
@payable
def lock(recipient: address, hashlock: bytes32, timelock: uint256) -> bytes32:
    """
    @notice Lock msg.value for `recipient` until `timelock` under `hashlock`.
    @param recipient Who receives the ether on a claim.
    @param hashlock sha256 of the 32-byte preimage.
    @param timelock Block timestamp from which the lock may be refunded.
    @return The lock's id: keccak256(abi_encode(sender, recipient, hashlock, timelock, amount)).
    """
    assert msg.value > 0 and msg.value <= MAX_AMOUNT, "lock between 1 and 2**96-1 wei"
    assert recipient != empty(address), "the recipient is zero"
    assert timelock > block.timestamp and timelock < 2**TIMELOCK_BITS, "the timelock must be in the future"
    id: bytes32 = keccak256(abi_encode(msg.sender, recipient, hashlock, timelock, msg.value))
    assert self.header[id] == 0, "an identical lock exists: change the timelock"
    self._settle(id, Lock(sender=msg.sender, recipient=recipient, amount=msg.value, hashlock=hashlock, timelock=timelock, state=PENDING), PENDING)
    self.payout[id] = convert(convert(recipient, uint160), uint256) | (msg.value << ADDRESS_BITS)
    self.hashlocks[id] = hashlock
    log Locked(id=id, sender=msg.sender, recipient=recipient, amount=msg.value, hashlock=hashlock, timelock=timelock)
    return id


@external
@view
def lock_of(id: bytes32) -> Lock:
    """
    @notice The lock `id` (all zero when there is none).
    @param id The lock's id.
    @return Sender, recipient, amount, hashlock, timelock and state (1 pending, 2 claimed, 3 refunded).
    """
    return self._lock(id)


@external
@nonreentrant
def claim(id: bytes32, preimage: bytes32):
    """
    @notice Pay lock `id` to its recipient with the preimage of its hashlock, before the timelock.
    @param id The lock's id.
    @param preimage The 32 bytes whose sha256 is the hashlock.
    """
    entry: Lock = self._lock(id)
    assert entry.state == PENDING, "no pending lock with this id"
    assert block.timestamp < entry.timelock, "the timelock has passed"
    assert sha256(preimage) == entry.hashlock, "wrong preimage"
    self._settle(id, entry, CLAIMED)
    log Claimed(id=id, preimage=preimage)
    raw_call(entry.recipient, b"", value=entry.amount)


@external
@nonreentrant
def refund(id: bytes32):
    """
    @notice Return lock `id` to its sender once its timelock is reached.
    @param id The lock's id.
    """
    entry: Lock = self._lock(id)
    assert entry.state == PENDING, "no pending lock with this id"
    assert block.timestamp >= entry.timelock, "the timelock has not passed"
    self._settle(id, entry, REFUNDED)
    log Refunded(id=id)
    raw_call(entry.sender, b"", value=entry.amount)
