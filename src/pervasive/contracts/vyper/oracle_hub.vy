# pragma version ~=0.4.3
"""
@title Oracle hub: queries from contracts, answers proven by t of n registered oracles
@license Apache-2.0
@notice Paper 001, section 4 (the Oraclize flow `oraclize_query(...)` then a `_callback`
        transaction), with a proof the contract checks itself: a consumer contract calls
        `query(kind, source, path)`; the oracle nodes follow QueryRequested, observe the
        source and each signs the EIP-712 struct
        Report(uint256 queryId,bytes32 responseDigest,uint256 value,uint64 observedAt,string source)
        in the domain {name: "pervasive oracle hub", version: "1", chainId, verifyingContract: this}.
        Anyone may send `fulfill` with at least `threshold` signatures of distinct registered
        oracles that agree on (queryId, responseDigest, value) (each signer with its own
        observedAt); the hub then calls the consumer's
        `oracle_callback(query_id, answer, digest)` and emits QueryAnswered (Vyper forbids
        `value` as a parameter name; the selector is oracle_callback(uint256,uint256,bytes32)).
        A query past its deadline may be `expire`d by anyone: QueryRetried until MAX_ATTEMPTS, then QueryTimedOut.
        Gas: a query's state is one packed slot (consumer, deadline, attempt, status) plus the
        hash of its source, cleared on the answer (a refund); reports are packed calldata
        (observedAt || r || s || v, 73 bytes each) with signers in strictly increasing address
        order, so a duplicate is refused without storage; membership is one SLOAD per signer.
        What the proof proves: t of n registered oracles observed this answer; not that the
        bytes came from the source's TLS server.
"""

MAX_ORACLES: constant(uint256) = 16
REPORT_BYTES: constant(uint256) = 73  # observedAt (8) || r (32) || s (32) || v (1)
MAX_REPORTS_BYTES: constant(uint256) = 1168  # 16 reports of 73 bytes
MAX_ATTEMPTS_LIMIT: constant(uint256) = 255
# gas the consumer's callback gets (EIP-150 keeps 1/64 back): a consumer that reverts or runs
# out of it does not block the answer, QueryAnswered says callback_ok = False
CALLBACK_GAS: constant(uint256) = 250000

KIND_URL: constant(uint8) = 1
KIND_DEVICE: constant(uint8) = 2
KIND_CID: constant(uint8) = 3

STATUS_NONE: constant(uint256) = 0
STATUS_PENDING: constant(uint256) = 1
STATUS_ANSWERED: constant(uint256) = 2
STATUS_TIMED_OUT: constant(uint256) = 3

REPORT_TYPEHASH: constant(bytes32) = keccak256(
    "Report(uint256 queryId,bytes32 responseDigest,uint256 value,uint64 observedAt,string source)"
)
DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
NAME_HASH: constant(bytes32) = keccak256("pervasive oracle hub")
VERSION_HASH: constant(bytes32) = keccak256("1")
# half the secp256k1 order: a high-s twin of a signature is refused (EIP-2)
HALF_ORDER: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

event OracleSetReplaced:
    epoch: indexed(uint256)
    oracles: DynArray[address, MAX_ORACLES]
    threshold: uint256

event QueryRequested:
    query_id: indexed(uint256)
    consumer: indexed(address)
    kind: uint8
    source: String[256]
    path: String[64]
    deadline: uint256
    attempt: uint256

event QueryAnswered:
    query_id: indexed(uint256)
    consumer: indexed(address)
    answer: uint256
    digest: bytes32
    signers: uint256
    callback_ok: bool

event QueryRetried:
    query_id: indexed(uint256)
    attempt: uint256
    deadline: uint256

event QueryTimedOut:
    query_id: indexed(uint256)
    consumer: indexed(address)
    attempt: uint256

OWNER: public(immutable(address))
TIMEOUT: public(immutable(uint256))
MAX_ATTEMPTS: public(immutable(uint256))
CACHED_CHAIN_ID: immutable(uint256)
CACHED_DOMAIN_SEPARATOR: immutable(bytes32)

# epoch (bits 16..) | threshold (bits 8..15) | n (bits 0..7): one SLOAD per fulfill
config: uint256
# oracle -> the epoch of the set it belongs to (registered iff equal to the current epoch)
member_epoch: HashMap[address, uint256]
oracle_list: DynArray[address, MAX_ORACLES]

# query id -> consumer (bits 96..255) | deadline (bits 32..95) | attempt (bits 8..15) | status (0..7)
query_slot: HashMap[uint256, uint256]
# query id -> keccak256(source), kept while the query is pending
source_hash: HashMap[uint256, bytes32]
next_query_id: public(uint256)


@deploy
def __init__(oracles: DynArray[address, MAX_ORACLES], threshold: uint256, timeout: uint256, max_attempts: uint256):
    assert timeout > 0 and timeout < 2**32, "timeout must be 1 to 2**32 - 1 seconds"
    assert max_attempts > 0 and max_attempts <= MAX_ATTEMPTS_LIMIT, "max_attempts must be 1 to 255"
    OWNER = msg.sender
    TIMEOUT = timeout
    MAX_ATTEMPTS = max_attempts
    CACHED_CHAIN_ID = chain.id
    CACHED_DOMAIN_SEPARATOR = self._domain_separator()
    self.next_query_id = 1
    self._replace(oracles, threshold)


@internal
def _replace(oracles: DynArray[address, MAX_ORACLES], threshold: uint256):
    n: uint256 = len(oracles)
    assert threshold > 0 and threshold <= n, "need 0 < threshold <= number of oracles"
    epoch: uint256 = (self.config >> 16) + 1
    for oracle: address in oracles:
        # zero is what ecrecover returns for a malformed signature: never a member
        assert oracle != empty(address), "an oracle may not be the zero address"
        assert self.member_epoch[oracle] != epoch, "an oracle is named twice"
        self.member_epoch[oracle] = epoch
    self.oracle_list = oracles
    self.config = (epoch << 16) | (threshold << 8) | n
    log OracleSetReplaced(epoch=epoch, oracles=oracles, threshold=threshold)


@internal
@view
def _domain_separator() -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@internal
@view
def _separator() -> bytes32:
    if chain.id != CACHED_CHAIN_ID:
        # after a chain split, reports for the other chain id must not verify here
        return self._domain_separator()
    return CACHED_DOMAIN_SEPARATOR


@internal
@view
def _report_digest(separator: bytes32, query_id: uint256, digest: bytes32, answer: uint256, observed_at: uint256, source: bytes32) -> bytes32:
    data: bytes32 = keccak256(abi_encode(REPORT_TYPEHASH, query_id, digest, answer, observed_at, source))
    return keccak256(concat(b"\x19\x01", separator, data))


@external
def query(kind: uint8, source: String[256], path: String[64]) -> uint256:
    """
    @notice Ask the oracles for a value; the answer arrives as `oracle_callback` on the caller.
    @param kind 1 = URL (HTTP GET), 2 = DEVICE ("<device id>/<sensor>"), 3 = CID (content store).
    @param source The URL, device sensor or CID to observe.
    @param path A JSON path to an integer ("cost", "data.items.0.price"), or "" for the whole body.
    @return The query id.
    """
    assert kind >= KIND_URL and kind <= KIND_CID, "unknown query kind"
    assert len(source) > 0, "the source may not be empty"
    query_id: uint256 = self.next_query_id
    self.next_query_id = query_id + 1
    deadline: uint256 = block.timestamp + TIMEOUT
    self.query_slot[query_id] = (convert(msg.sender, uint256) << 96) | (deadline << 32) | (1 << 8) | STATUS_PENDING
    self.source_hash[query_id] = keccak256(source)
    log QueryRequested(query_id=query_id, consumer=msg.sender, kind=kind, source=source, path=path, deadline=deadline, attempt=1)
    return query_id


@external
def fulfill(query_id: uint256, digest: bytes32, answer: uint256, reports: Bytes[MAX_REPORTS_BYTES]):
    """
    @notice Answer a pending query with t or more reports of registered oracles, then call back.
    @param query_id The query answered.
    @param digest keccak256 of the exact response bytes the oracles observed.
    @param answer The agreed integer (the reports' `value`).
    @param reports 73-byte reports (observedAt as uint64 || r || s || v), signers increasing.
    """
    slot: uint256 = self.query_slot[query_id]
    assert slot & 255 == STATUS_PENDING, "query is not pending (answered, timed out or unknown)"
    assert block.timestamp <= (slot >> 32) & (2**64 - 1), "query is past its deadline: expire it"
    assert len(reports) % REPORT_BYTES == 0, "reports must be 73 bytes each"
    count: uint256 = len(reports) // REPORT_BYTES
    config: uint256 = self.config
    assert count >= (config >> 8) & 255, "too few reports for the threshold"
    epoch: uint256 = config >> 16
    separator: bytes32 = self._separator()
    source: bytes32 = self.source_hash[query_id]
    previous: uint256 = 0
    for i: uint256 in range(count, bound=MAX_ORACLES):
        start: uint256 = i * REPORT_BYTES
        head: bytes32 = extract32(reports, start)
        observed_at: uint256 = convert(head, uint256) >> 192
        r: bytes32 = extract32(reports, start + 8)
        s: bytes32 = extract32(reports, start + 40)
        # v is the low byte of the word ending at the report's last byte
        v: uint256 = convert(extract32(reports, start + 41), uint256) & 255
        assert convert(s, uint256) <= HALF_ORDER, "bad report signature (high s)"
        signer: address = ecrecover(self._report_digest(separator, query_id, digest, answer, observed_at, source), v, r, s)
        assert signer != empty(address), "bad report signature"
        assert convert(signer, uint256) > previous, "signers must be distinct, in increasing address order"
        previous = convert(signer, uint256)
        assert self.member_epoch[signer] == epoch, "a report is signed by an unregistered key"
    consumer: address = convert(slot >> 96, address)
    # effects before the interaction; the source hash is freed (a gas refund)
    self.query_slot[query_id] = (slot & ~convert(255, uint256)) | STATUS_ANSWERED
    self.source_hash[query_id] = empty(bytes32)
    assert msg.gas > CALLBACK_GAS + CALLBACK_GAS // 63 + 10000, "too little gas for the callback"
    ok: bool = raw_call(
        consumer,
        abi_encode(query_id, answer, digest, method_id=method_id("oracle_callback(uint256,uint256,bytes32)")),
        gas=CALLBACK_GAS,
        revert_on_failure=False,
    )
    log QueryAnswered(query_id=query_id, consumer=consumer, answer=answer, digest=digest, signers=count, callback_ok=ok)


@external
def expire(query_id: uint256):
    """
    @notice End an attempt of a query past its deadline: retry it, or time it out after MAX_ATTEMPTS.
    @param query_id The query.
    """
    slot: uint256 = self.query_slot[query_id]
    assert slot & 255 == STATUS_PENDING, "query is not pending (answered, timed out or unknown)"
    assert block.timestamp > (slot >> 32) & (2**64 - 1), "query is not past its deadline yet"
    attempt: uint256 = (slot >> 8) & 255
    consumer: address = convert(slot >> 96, address)
    if attempt < MAX_ATTEMPTS:
        deadline: uint256 = block.timestamp + TIMEOUT
        self.query_slot[query_id] = (convert(consumer, uint256) << 96) | (deadline << 32) | ((attempt + 1) << 8) | STATUS_PENDING
        log QueryRetried(query_id=query_id, attempt=attempt + 1, deadline=deadline)
    else:
        self.query_slot[query_id] = (slot & ~convert(255, uint256)) | STATUS_TIMED_OUT
        self.source_hash[query_id] = empty(bytes32)
        log QueryTimedOut(query_id=query_id, consumer=consumer, attempt=attempt)


@external
def replace_oracles(oracles: DynArray[address, MAX_ORACLES], threshold: uint256):
    """
    @notice Replace the registered oracle set and threshold (owner only); reports of keys
            outside the new set stop counting at once.
    @param oracles The new set (at most 16 distinct non-zero addresses).
    @param threshold How many reports an answer needs.
    """
    assert msg.sender == OWNER, "only the owner may replace the oracle set"
    self._replace(oracles, threshold)


@external
@view
def oracles() -> DynArray[address, MAX_ORACLES]:
    """
    @notice The registered oracle set.
    @return The oracle addresses, in the order they were registered.
    """
    return self.oracle_list


@external
@view
def threshold() -> uint256:
    """
    @notice How many reports of distinct registered oracles an answer needs.
    @return t.
    """
    return (self.config >> 8) & 255


@external
@view
def epoch() -> uint256:
    """
    @notice The number of the current oracle set (1 for the set given at deployment).
    @return The epoch.
    """
    return self.config >> 16


@external
@view
def is_oracle(account: address) -> bool:
    """
    @notice Whether `account` is in the current oracle set.
    @param account An address.
    @return True when registered.
    """
    return account != empty(address) and self.member_epoch[account] == self.config >> 16


@external
@view
def status(query_id: uint256) -> uint8:
    """
    @notice The status of a query, for consumers: 0 unknown, 1 pending, 2 answered, 3 timed out.
    @param query_id The query.
    @return The status code.
    """
    return convert(self.query_slot[query_id] & 255, uint8)


@external
@view
def query_status(query_id: uint256) -> (uint8, address, uint256, uint256):
    """
    @notice Everything the hub keeps about a query.
    @param query_id The query.
    @return (status, consumer, attempt, deadline as a unix time).
    """
    slot: uint256 = self.query_slot[query_id]
    return convert(slot & 255, uint8), convert(slot >> 96, address), (slot >> 8) & 255, (slot >> 32) & (2**64 - 1)


@external
@view
def domain_separator() -> bytes32:
    """
    @notice The EIP-712 domain separator reports are signed under.
    @return keccak256 of the domain {"pervasive oracle hub", "1", chain.id, this}.
    """
    return self._domain_separator()


@external
@view
def report_digest(query_id: uint256, digest: bytes32, answer: uint256, observed_at: uint64, source: String[256]) -> bytes32:
    """
    @notice The EIP-712 digest an oracle signs for one report.
    @param query_id The query.
    @param digest keccak256 of the response bytes.
    @param answer The integer observed (the report's `value`).
    @param observed_at When the oracle observed it (unix seconds).
    @param source The query's source.
    @return keccak256(0x1901 || domain separator || struct hash).
    """
    return self._report_digest(self._separator(), query_id, digest, answer, convert(observed_at, uint256), keccak256(source))
