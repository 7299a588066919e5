# pragma version ~=0.4.3
"""
@title Data index (B_d): where the provider posts the encrypted data index of a payment
@license Apache-2.0
@notice Paper 003, section V-B, second step of the swap: P answers C's payment on B_u
        with a transaction on B_d carrying the data index, encrypted to C's key. The
        notaries look for this event when C challenges "undelivered". One post per
        (payment id, provider): keyed by the sender too, because this chain cannot know
        who was paid on B_u, and a first-come key would let anyone front-run P with
        garbage and have P penalized.
"""

MAX_CIPHERTEXT: constant(uint256) = 1024


event IndexPosted:
    payment_id: indexed(bytes32)
    provider: indexed(address)
    consumer: indexed(address)
    ciphertext: Bytes[MAX_CIPHERTEXT]


posted_at: HashMap[bytes32, uint256]


@external
def post(payment_id: bytes32, consumer: address, ciphertext: Bytes[MAX_CIPHERTEXT]):
    """
    @notice Post the encrypted data index for `payment_id`, once per payment and sender.
    @param payment_id The payment's id on the user chain (from its Paid event).
    @param consumer The consumer the index is encrypted to.
    @param ciphertext The encrypted data index.
    """
    assert payment_id != empty(bytes32), "the payment id is zero"
    assert consumer != empty(address), "the consumer is zero"
    assert len(ciphertext) > 0, "the ciphertext is empty"
    key: bytes32 = keccak256(abi_encode(payment_id, msg.sender))
    assert self.posted_at[key] == 0, "already posted for this payment"
    self.posted_at[key] = block.number
    log IndexPosted(payment_id=payment_id, provider=msg.sender, consumer=consumer, ciphertext=ciphertext)


@external
@view
def posted_block(payment_id: bytes32, provider: address) -> uint256:
    """
    @notice The block in which `provider` posted the index of `payment_id` (0: not posted).
    @param payment_id The payment's id on the user chain.
    @param provider The provider who posted.
    @return The block number, or 0.
    """
    return self.posted_at[keccak256(abi_encode(payment_id, provider))]
