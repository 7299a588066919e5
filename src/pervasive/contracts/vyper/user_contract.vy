# pragma version ~=0.4.3
"""
@title User contract (C_u): Algorithm 1 of paper 003, pay a provider against a deposit
@license Apache-2.0
@notice Paper 003, section V-B, Algorithm 1: deposit = calculate(amount, coef); if the
        oracle C_o says the consumer's deposit covers it, transfer the amount to the
        provider. Here the oracle's "true" is t notary signatures over an EIP-712
        attestation for this consumer's payment number `counter`; the counter makes each
        attestation usable once. "return false" becomes a revert with a reason, so no
        ether is ever kept.
        The transfer is a credit the provider withdraws (pull, not push): pay then makes
        no call to an address the consumer chooses (no reentrancy, no provider able to
        make payments to it fail), and a credit costs 5,000 gas against 9,300 for a
        value call, which keeps a 3-signature payment under 60,000 gas. A credit is
        stored plus one, so a withdrawal leaves the slot non-zero and the provider's next
        credit is not a 20,000-gas fresh slot. Paid means the amount is P's, irrevocably.
"""

MAX_SIGNATURES_BYTES: constant(uint256) = 1040


interface DepositOracle:
    def check(consumer: address, provider: address, required: uint256, counter: uint256, expiry: uint256, signatures: Bytes[MAX_SIGNATURES_BYTES]) -> bool: view


event Withdrawn:
    provider: indexed(address)
    amount: uint256


event Paid:
    consumer: indexed(address)
    provider: indexed(address)
    payment_id: indexed(bytes32)
    amount: uint256
    counter: uint256
    required: uint256


ORACLE: public(immutable(address))
COEF_PERCENT: public(immutable(uint256))

counters: public(HashMap[address, uint256])
# credit + 1 for an account ever credited, 0 for the others (see the notice)
credit_slots: HashMap[address, uint256]


@deploy
def __init__(oracle: address, coef_percent: uint256):
    assert oracle.is_contract, "the oracle must be a deployed contract"
    assert coef_percent > 0, "coef_percent must be positive"
    ORACLE = oracle
    COEF_PERCENT = coef_percent


@external
@view
def required_deposit(amount: uint256) -> uint256:
    """
    @notice Algorithm 1's calculate(amount, coef): the deposit a payment of `amount` needs.
    @param amount The payment in wei.
    @return amount * coef_percent / 100.
    """
    return amount * COEF_PERCENT // 100


@external
@view
def payment_id(consumer: address, counter: uint256) -> bytes32:
    """
    @notice The id of `consumer`'s payment number `counter` on this contract.
    @param consumer The paying consumer.
    @param counter The payment number.
    @return keccak256(abi_encode(chain.id, this, consumer, counter)).
    """
    return keccak256(abi_encode(chain.id, self, consumer, counter))


@external
@payable
def pay(provider: address, counter: uint256, expiry: uint256, signatures: Bytes[MAX_SIGNATURES_BYTES]):
    """
    @notice Pay msg.value to `provider` (credited, see withdraw) as payment number
            `counter` of the sender, if the deposit oracle accepts the attestation.
    @param provider The data provider P, credited with msg.value.
    @param counter Must equal counters(msg.sender).
    @param expiry The attestation's last valid block number.
    @param signatures The members' 65-byte signatures, signers in increasing address order.
    """
    assert msg.value > 0, "pay a positive amount"
    assert provider != empty(address) and provider != msg.sender, "pay another, non-zero provider"
    assert counter == self.counters[msg.sender], "wrong counter: read counters(consumer)"
    required: uint256 = msg.value * COEF_PERCENT // 100
    assert staticcall DepositOracle(ORACLE).check(msg.sender, provider, required, counter, expiry, signatures), "the deposit oracle refused"
    self.counters[msg.sender] = counter + 1
    log Paid(
        consumer=msg.sender,
        provider=provider,
        payment_id=keccak256(abi_encode(chain.id, self, msg.sender, counter)),
        amount=msg.value,
        counter=counter,
        required=required,
    )
    stored: uint256 = self.credit_slots[provider]
    if stored == 0:
        stored = 1
    self.credit_slots[provider] = stored + msg.value


@external
@view
def credit(provider: address) -> uint256:
    """
    @notice What `provider` has been paid and not yet withdrawn.
    @param provider The data provider.
    @return The withdrawable amount in wei.
    """
    stored: uint256 = self.credit_slots[provider]
    if stored == 0:
        return 0
    return stored - 1


@external
@nonreentrant
def withdraw():
    """
    @notice Send the sender everything it has been paid and not yet withdrawn.
    """
    stored: uint256 = self.credit_slots[msg.sender]
    assert stored > 1, "nothing to withdraw"
    self.credit_slots[msg.sender] = 1
    log Withdrawn(provider=msg.sender, amount=stored - 1)
    raw_call(msg.sender, b"", value=stored - 1)
