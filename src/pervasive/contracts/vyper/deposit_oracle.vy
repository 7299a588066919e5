# pragma version ~=0.4.3
"""
@title Deposit oracle (C_o): t-of-n notary attestations that a deposit covers a payment
@license Apache-2.0
@notice Paper 003, section V-B, Algorithm 2: the notary members follow B_u's pool and
        deposits off-chain (a contract cannot walk the transaction pool) and attest that
        a consumer's deposit covers `required` for its payment number `counter`. This
        contract checks t member signatures over the EIP-712 struct
        DepositAttestation(address consumer,address provider,uint256 required,uint256 counter,uint256 expiry)
        in the domain {name: "pervasive deposit oracle", version: "1", chainId, verifyingContract: this}.
        Signatures are 65 bytes (r || s || v) concatenated with their signers in strictly
        increasing address order, so a signer cannot be counted twice without any storage.
        Members are a sorted immutable list and are matched by one merge walk, so a check
        costs three ecrecovers and no SLOAD; it holds no state and emits no events.
"""

MAX_MEMBERS: constant(uint256) = 16
MAX_SIGNATURES_BYTES: constant(uint256) = 1040  # 16 signatures of 65 bytes

ATTESTATION_TYPEHASH: constant(bytes32) = keccak256(
    "DepositAttestation(address consumer,address provider,uint256 required,uint256 counter,uint256 expiry)"
)
DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
NAME_HASH: constant(bytes32) = keccak256("pervasive deposit oracle")
VERSION_HASH: constant(bytes32) = keccak256("1")
# half the secp256k1 order: a high-s twin of a signature is refused (EIP-2)
HALF_ORDER: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

# refusal codes of `refusal` (0: accepted)
ACCEPTED: constant(uint8) = 0
EXPIRED: constant(uint8) = 1
MALFORMED: constant(uint8) = 2
TOO_FEW: constant(uint8) = 3
BAD_SIGNATURE: constant(uint8) = 4
NOT_INCREASING: constant(uint8) = 5
NOT_MEMBER: constant(uint8) = 6

MEMBERS: immutable(DynArray[address, MAX_MEMBERS])
THRESHOLD: public(immutable(uint256))
NOTARY: public(immutable(address))
CACHED_CHAIN_ID: immutable(uint256)
CACHED_DOMAIN_SEPARATOR: immutable(bytes32)


@deploy
def __init__(members: DynArray[address, MAX_MEMBERS], threshold: uint256, notary: address):
    assert threshold > 0 and threshold <= len(members), "need 0 < threshold <= members"
    previous: address = empty(address)
    for member: address in members:
        # sorted and distinct, so checking is one merge walk; this also refuses zero,
        # which ecrecover returns for a malformed signature
        assert convert(member, uint160) > convert(previous, uint160), "members must be sorted, distinct, non-zero"
        previous = member
    MEMBERS = members
    THRESHOLD = threshold
    NOTARY = notary
    CACHED_CHAIN_ID = chain.id
    CACHED_DOMAIN_SEPARATOR = self._domain_separator()


@internal
@view
def _domain_separator() -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@internal
@view
def _digest(consumer: address, provider: address, required: uint256, counter: uint256, expiry: uint256) -> bytes32:
    separator: bytes32 = CACHED_DOMAIN_SEPARATOR
    if chain.id != CACHED_CHAIN_ID:
        # after a chain split, signatures for the other chain id must not verify here
        separator = self._domain_separator()
    data: bytes32 = keccak256(abi_encode(ATTESTATION_TYPEHASH, consumer, provider, required, counter, expiry))
    return keccak256(concat(b"\x19\x01", separator, data))


@internal
@view
def _refusal(
    consumer: address,
    provider: address,
    required: uint256,
    counter: uint256,
    expiry: uint256,
    signatures: Bytes[MAX_SIGNATURES_BYTES],
) -> uint8:
    if block.number > expiry:
        return EXPIRED
    if len(signatures) % 65 != 0:
        return MALFORMED
    count: uint256 = len(signatures) // 65
    if count < THRESHOLD:
        return TOO_FEW
    digest: bytes32 = self._digest(consumer, provider, required, counter, expiry)
    size: uint256 = len(MEMBERS)
    cursor: uint256 = 0
    previous: uint160 = 0
    # only the first THRESHOLD signatures are read: extra ones change nothing
    for i: uint256 in range(THRESHOLD, bound=MAX_MEMBERS):
        start: uint256 = i * 65
        r: bytes32 = extract32(signatures, start)
        s: bytes32 = extract32(signatures, start + 32)
        # v is the low byte of the word ending at the signature's last byte
        v: uint256 = convert(extract32(signatures, start + 33), uint256) & 255
        if convert(s, uint256) > HALF_ORDER:
            return BAD_SIGNATURE
        signer: address = ecrecover(digest, v, r, s)
        if signer == empty(address):
            return BAD_SIGNATURE
        if convert(signer, uint160) <= previous:
            return NOT_INCREASING
        previous = convert(signer, uint160)
        # merge walk: both lists are sorted, so the cursor never moves back
        for j: uint256 in range(MAX_MEMBERS):
            if cursor >= size or convert(MEMBERS[cursor], uint160) >= previous:
                break
            cursor += 1
        if cursor >= size or MEMBERS[cursor] != signer:
            return NOT_MEMBER
        cursor += 1
    return ACCEPTED


@external
@view
def members() -> DynArray[address, MAX_MEMBERS]:
    """
    @notice The members whose signatures count, in increasing address order.
    @return The member addresses.
    """
    return MEMBERS


@external
@view
def domain_separator() -> bytes32:
    """
    @notice The EIP-712 domain separator attestations are signed under.
    @return keccak256 of the domain {"pervasive deposit oracle", "1", chain.id, this}.
    """
    return self._domain_separator()


@external
@view
def attestation_digest(consumer: address, provider: address, required: uint256, counter: uint256, expiry: uint256) -> bytes32:
    """
    @notice The EIP-712 digest each member signs for one attestation.
    @param consumer The paying consumer C.
    @param provider The provider P paid.
    @param required The deposit required for this payment.
    @param counter The consumer's payment number in C_u.
    @param expiry The last block number at which the attestation counts.
    @return keccak256(0x1901 || domain separator || struct hash).
    """
    return self._digest(consumer, provider, required, counter, expiry)


@external
@view
def check(
    consumer: address,
    provider: address,
    required: uint256,
    counter: uint256,
    expiry: uint256,
    signatures: Bytes[MAX_SIGNATURES_BYTES],
) -> bool:
    """
    @notice Whether THRESHOLD members attest that `consumer`'s deposit covers `required`.
    @param consumer The paying consumer C.
    @param provider The provider P paid.
    @param required The deposit required for this payment.
    @param counter The consumer's payment number in C_u.
    @param expiry The last block number at which the attestation counts.
    @param signatures 65-byte signatures, signers in strictly increasing address order.
    @return True when accepted.
    """
    return self._refusal(consumer, provider, required, counter, expiry, signatures) == ACCEPTED


@external
@view
def refusal(
    consumer: address,
    provider: address,
    required: uint256,
    counter: uint256,
    expiry: uint256,
    signatures: Bytes[MAX_SIGNATURES_BYTES],
) -> uint8:
    """
    @notice Why `check` refuses: 0 accepted, 1 expired, 2 malformed, 3 too few signatures,
            4 a bad signature, 5 signers not strictly increasing, 6 a signer not a member.
    @param consumer The paying consumer C.
    @param provider The provider P paid.
    @param required The deposit required for this payment.
    @param counter The consumer's payment number in C_u.
    @param expiry The last block number at which the attestation counts.
    @param signatures 65-byte signatures, signers in strictly increasing address order.
    @return The refusal code.
    """
    return self._refusal(consumer, provider, required, counter, expiry, signatures)
