# pragma version ~=0.4.3
"""
@title Notary (C_sp): deposits held under the committee's threshold-BLS group key
@license Apache-2.0
@notice Paper 003, section V-A step 3 and V-C. C and P lock their deposits here; the
        notary committee moves them only with a threshold signature (eq. 6) that this
        contract checks (eq. 7) through the EIP-2537 precompiles:
        e(sig, -g2) * e(H(m), PK) == 1, with H the RFC 9380 hash to G1
        (expand_message_xmd with SHA-256, DST BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_).
        The signed message is 32 bytes:
        keccak256(abi_encode(tag, chain.id, self, id, from, to, amount)).
        A penalty moves min(amount, deposit) of the cheater to the victim, once per
        challenge id; a release returns a deposit to its owner after period_end.
        The 256-byte group key is an immutable (read from code, not storage).
        Checks-effects-interactions, and the paying functions are nonreentrant.
"""

MAX_MEMBERS: constant(uint256) = 16  # as the deposit oracle: one committee signs both
MAX_TRANSCRIPT: constant(uint256) = 128

PENALTY_TAG: constant(bytes32) = keccak256("pervasive.notary.penalty")
RELEASE_TAG: constant(bytes32) = keccak256("pervasive.notary.release")

# DST_prime = DST || I2OSP(len(DST), 1) (RFC 9380, 5.3.1); len(DST) = 43 = 0x2b
DST_PRIME: constant(Bytes[44]) = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_\x2b"
# I2OSP(128, 2) || I2OSP(0, 1): two 64-byte field elements are expanded
LEN_AND_ZERO: constant(Bytes[3]) = b"\x00\x80\x00"
# the BLS12-381 base field modulus p, 48 bytes
FIELD_MODULUS: constant(Bytes[48]) = x"1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab"
# the negated G2 generator in EIP-2537 form, so that one pairing call checks eq. 7
NEG_G2: constant(Bytes[256]) = x"00000000000000000000000000000000024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb80000000000000000000000000000000013e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e000000000000000000000000000000000d1b3cc2c7027888be51d9ef691d77bcb679afda66c73f17f9ee3837a55024f78c71363275a75d75d86bab79f74782aa0000000000000000000000000000000013fa4d4a0ad8b1ce186ed5061789213d993923066dddaf1040bc3ff59f825c78df74f2d75467e25e0f55f8a00fa030ed"

MODEXP: constant(address) = 0x0000000000000000000000000000000000000005
G1ADD: constant(address) = 0x000000000000000000000000000000000000000b
G2MSM: constant(address) = 0x000000000000000000000000000000000000000E
PAIRING: constant(address) = 0x000000000000000000000000000000000000000F
MAP_FP_TO_G1: constant(address) = 0x0000000000000000000000000000000000000010


event Deposited:
    account: indexed(address)
    amount: uint256
    balance: uint256

event Penalized:
    challenge_id: indexed(bytes32)
    cheater: indexed(address)
    victim: indexed(address)
    amount: uint256
    asked: uint256

event Released:
    account: indexed(address)
    nonce: indexed(uint256)
    amount: uint256


GROUP_KEY: public(immutable(Bytes[256]))
THRESHOLD: public(immutable(uint256))
PERIOD_END: public(immutable(uint256))
PUBLISH_WINDOW: public(immutable(uint256))

# in code, not storage: set once, and 200 gas a byte at deployment beats 22,100 a slot
MEMBERS: immutable(DynArray[address, MAX_MEMBERS])
TRANSCRIPT: immutable(String[MAX_TRANSCRIPT])
deposits: public(HashMap[address, uint256])
settled: public(HashMap[bytes32, bool])
release_nonces: public(HashMap[address, uint256])


@deploy
def __init__(
    group_key: Bytes[256],
    threshold: uint256,
    members: DynArray[address, MAX_MEMBERS],
    period_end: uint256,
    publish_window: uint256,
    transcript: String[MAX_TRANSCRIPT],
):
    assert len(group_key) == 256, "the group key is a 256-byte EIP-2537 G2 point"
    assert not self._is_zero(group_key, 8), "the group key is infinity"
    # G2MSM checks the point is on the curve and in the subgroup (G2ADD does not)
    on_curve: bool = False
    scaled: Bytes[256] = b""
    on_curve, scaled = raw_call(
        G2MSM,
        concat(group_key, convert(1, bytes32)),
        max_outsize=256,
        is_static_call=True,
        revert_on_failure=False,
    )
    assert on_curve and keccak256(scaled) == keccak256(group_key), "the group key is not a G2 point"
    assert threshold > 0 and threshold <= len(members), "need 0 < threshold <= members"
    for member: address in members:
        assert member != empty(address), "a member address is zero"
    assert period_end > block.timestamp, "period_end must be in the future"
    GROUP_KEY = group_key
    THRESHOLD = threshold
    PERIOD_END = period_end
    PUBLISH_WINDOW = publish_window
    MEMBERS = members
    TRANSCRIPT = transcript


@external
@view
def members() -> DynArray[address, MAX_MEMBERS]:
    """
    @notice The committee members' secp256k1 addresses.
    @return The member addresses, as given at deployment.
    """
    return MEMBERS


@external
@view
def transcript() -> String[MAX_TRANSCRIPT]:
    """
    @notice The CID of the DKG transcript, so anyone can audit how the group key was made.
    @return The transcript's CID.
    """
    return TRANSCRIPT


@internal
@pure
def _is_zero(point: Bytes[256], words: uint256) -> bool:
    # EIP-2537 encodes the point at infinity as all zero bytes
    acc: uint256 = 0
    for i: uint256 in range(words, bound=8):
        acc |= convert(extract32(point, i * 32), uint256)
    return acc == 0


@internal
@view
def _reduce(wide: bytes32, low: bytes32) -> Bytes[64]:
    # one 64-byte field element of expand_message_xmd mod p (MODEXP with exponent 1),
    # returned left-padded to the 64 bytes EIP-2537 expects
    reduced: Bytes[48] = raw_call(
        MODEXP,
        concat(
            convert(64, bytes32), convert(1, bytes32), convert(48, bytes32),
            wide, low, b"\x01", FIELD_MODULUS,
        ),
        max_outsize=48,
        is_static_call=True,
    )
    return concat(empty(bytes16), reduced)


@internal
@view
def _hash_to_g1(message: bytes32) -> Bytes[128]:
    # RFC 9380 hash_to_curve for BLS12381G1_XMD:SHA-256_SSWU_RO_: expand to 128 bytes,
    # two field elements, map each, add (MAP_FP_TO_G1 clears the cofactor)
    b0: bytes32 = sha256(concat(empty(bytes32), empty(bytes32), message, LEN_AND_ZERO, DST_PRIME))
    b1: bytes32 = sha256(concat(b0, b"\x01", DST_PRIME))
    b2: bytes32 = sha256(concat(convert(convert(b0, uint256) ^ convert(b1, uint256), bytes32), b"\x02", DST_PRIME))
    b3: bytes32 = sha256(concat(convert(convert(b0, uint256) ^ convert(b2, uint256), bytes32), b"\x03", DST_PRIME))
    b4: bytes32 = sha256(concat(convert(convert(b0, uint256) ^ convert(b3, uint256), bytes32), b"\x04", DST_PRIME))
    q0: Bytes[128] = raw_call(MAP_FP_TO_G1, self._reduce(b1, b2), max_outsize=128, is_static_call=True)
    q1: Bytes[128] = raw_call(MAP_FP_TO_G1, self._reduce(b3, b4), max_outsize=128, is_static_call=True)
    return raw_call(G1ADD, concat(q0, q1), max_outsize=128, is_static_call=True)


@internal
@view
def _verify(message: bytes32, signature: Bytes[128]) -> bool:
    if len(signature) != 128:
        return False
    # the pairing precompile accepts infinity, and e(0, -g2) = 1 would let H(m)'s
    # term alone decide: refuse the point at infinity outright
    if self._is_zero(signature, 4):
        return False
    ok: bool = False
    out: Bytes[32] = b""
    ok, out = raw_call(
        PAIRING,
        concat(signature, NEG_G2, self._hash_to_g1(message), GROUP_KEY),
        max_outsize=32,
        is_static_call=True,
        revert_on_failure=False,
    )
    return ok and len(out) == 32 and convert(out, uint256) == 1


@internal
@view
def _message(tag: bytes32, id: bytes32, source: address, target: address, amount: uint256) -> bytes32:
    return keccak256(abi_encode(tag, chain.id, self, id, source, target, amount))


@external
@payable
def deposit():
    """
    @notice Add msg.value to the sender's deposit.
    """
    assert msg.value > 0, "deposit a positive amount"
    balance: uint256 = self.deposits[msg.sender] + msg.value
    self.deposits[msg.sender] = balance
    log Deposited(account=msg.sender, amount=msg.value, balance=balance)


@external
@view
def verify(message: bytes32, signature: Bytes[128]) -> bool:
    """
    @notice Whether `signature` (128-byte EIP-2537 G1) is the group's BLS signature of `message`.
    @param message The 32-byte message (a penalty or release message).
    @param signature The threshold signature in EIP-2537 form.
    @return True when e(signature, g2) == e(H(message), group key).
    """
    return self._verify(message, signature)


@external
@view
def penalty_message(challenge_id: bytes32, cheater: address, victim: address, amount: uint256) -> bytes32:
    """
    @notice The 32 bytes the committee signs to penalize `cheater` in favour of `victim`.
    @param challenge_id keccak256(abi_encode(kind, payment_id)) of the challenge.
    @param cheater Whose deposit is taken.
    @param victim Who receives it.
    @param amount The most that is moved.
    @return keccak256(abi_encode(PENALTY_TAG, chain.id, self, challenge_id, cheater, victim, amount)).
    """
    return self._message(PENALTY_TAG, challenge_id, cheater, victim, amount)


@external
@view
def release_message(account: address, amount: uint256) -> bytes32:
    """
    @notice The 32 bytes the committee signs to release `amount` of `account`'s deposit now.
    @param account The depositor.
    @param amount The amount to return.
    @return The release message for the account's current release nonce.
    """
    id: bytes32 = keccak256(abi_encode(account, self.release_nonces[account]))
    return self._message(RELEASE_TAG, id, account, account, amount)


@external
@nonreentrant
def penalize(challenge_id: bytes32, cheater: address, victim: address, amount: uint256, signature: Bytes[128]):
    """
    @notice Move min(amount, deposit) of `cheater` to `victim`, once per challenge id.
    @param challenge_id The challenge this penalty settles; accepted once.
    @param cheater Whose deposit is taken.
    @param victim Who receives it.
    @param amount The penalty asked for.
    @param signature The committee's threshold BLS signature of the penalty message.
    """
    assert not self.settled[challenge_id], "challenge already settled"
    assert cheater != victim and victim != empty(address), "cheater and victim must differ"
    assert amount > 0, "the penalty must be positive"
    message: bytes32 = self._message(PENALTY_TAG, challenge_id, cheater, victim, amount)
    assert self._verify(message, signature), "invalid notary signature"
    moved: uint256 = min(amount, self.deposits[cheater])
    self.settled[challenge_id] = True
    self.deposits[cheater] -= moved
    log Penalized(challenge_id=challenge_id, cheater=cheater, victim=victim, amount=moved, asked=amount)
    if moved > 0:
        raw_call(victim, b"", value=moved)


@external
@nonreentrant
def release(account: address, amount: uint256, signature: Bytes[128]):
    """
    @notice Return `amount` of `account`'s deposit to it, after period_end, with the
            committee's signature over the release message of its current nonce.
    @param account The depositor (the ether goes to it, whoever sends this).
    @param amount The amount returned; at most the deposit.
    @param signature The committee's threshold BLS signature of the release message.
    """
    assert block.timestamp > PERIOD_END, "the deposit period has not ended"
    assert amount > 0 and amount <= self.deposits[account], "amount exceeds the deposit"
    nonce: uint256 = self.release_nonces[account]
    id: bytes32 = keccak256(abi_encode(account, nonce))
    message: bytes32 = self._message(RELEASE_TAG, id, account, account, amount)
    assert self._verify(message, signature), "invalid notary signature"
    self.release_nonces[account] = nonce + 1
    self.deposits[account] -= amount
    log Released(account=account, nonce=nonce, amount=amount)
    raw_call(account, b"", value=amount)
