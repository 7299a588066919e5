# pragma version ~=0.4.3
"""
@title DIVERSITY agreement a = (U_a, S_a, Q_0, f_a, I_a, r_a) : U_a
@license Apache-2.0
@notice One on-chain agreement of paper 002 (section 3): parties U_a, sensors S_a with
        window start points Q_0, window size z and sliding factor sl, the off-chain code
        f_a (name + keccak256 of its source), the intermediate nodes I_a (each with the
        party that trusts it), the quality of service, the reward per agreed window and
        the reaction r_a. Deployed by the agreement factory from a blueprint, so every
        term is an immutable: reading a node address costs no SLOAD.
        The agreement is created only with every party's EIP-712 signature of its terms
        (the paper's ": U_a"), so it is active from birth and an update reads no status
        slot. Then: updates (one per window t, signed by every node) and disputes -> after `expiry`
        no update is accepted; after a further claim period of 30 days the parties take
        back their remaining escrow.
        Gas: an update reads nothing from storage but its own record slot and writes that
        one fresh slot (the record commitment, keyed by t); the full record goes into
        the Updated event, the window data (on-chain QoS) stays in calldata. Rewards are
        claimed lazily against the record map, so an update writes no counter.
        Money only moves by pull payments (`withdraw`); every function is
        checks-effects-interactions and only `withdraw` makes an external call.
"""

MAX_PARTIES: constant(uint256) = 8
MAX_NODES: constant(uint256) = 8
MAX_SENSORS: constant(uint256) = 8
MAX_NAME: constant(uint256) = 64
MAX_RESULT: constant(uint256) = 512
MAX_DATA: constant(uint256) = 65536
MAX_EVIDENCE: constant(uint256) = 16
MAX_CLAIM: constant(uint256) = 256
CLAIM_PERIOD: constant(uint256) = 30 * 86400

# Quality of service (paper 002, section 2), the offchain QoS enum values.
QOS_NO_PROOF: constant(uint8) = 0
QOS_OFFCHAIN_PROOF: constant(uint8) = 1
QOS_ONCHAIN_PROOF: constant(uint8) = 2

# How the nodes sign (paper 002, Fig. 2): ring (2A), leader, fast (2B, the leader
# piggybacks P_{t-1} on round t); the leader is a node index or LEADER_ROTATING.
SIGNING_RING: constant(uint8) = 0
SIGNING_LEADER: constant(uint8) = 1
SIGNING_FAST: constant(uint8) = 2
LEADER_ROTATING: constant(uint8) = 255

# The closed set of reactions r_a.
REACTION_NONE: constant(uint8) = 0
REACTION_EMIT: constant(uint8) = 1
REACTION_PAY_FIXED: constant(uint8) = 2
REACTION_PAY_PER_UNIT: constant(uint8) = 3

# Dispute kinds (pervasive.offchain.outcomes.DisputeKind).
DISPUTE_WINDOW_HASH: constant(uint8) = 1
DISPUTE_RESULT: constant(uint8) = 2
DISPUTE_BAD_REVEAL: constant(uint8) = 3
DISPUTE_LAST_KIND: constant(uint8) = 6


S_MASK: constant(uint256) = 2**255 - 1

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
TERMS_TYPEHASH: constant(bytes32) = keccak256(
    "Terms(address[] parties,address[] sensors,uint64[] startPoints,uint64 windowSize,"
    "uint64 slidingFactor,string functionName,bytes32 functionHash,address[] nodes,"
    "uint8[] nodeParties,uint8 qos,uint256 reward,uint8 reaction,uint8 payer,uint8 payee,"
    "uint256 amount,uint64 expiry,uint8 signing,uint8 leader)"
)
UPDATE_TYPEHASH: constant(bytes32) = keccak256(
    "Update(address agreement,uint256 window,bytes result,bytes32 windowHash,"
    "bytes32 proofsHash,bytes32 dataHash)"
)
PROOF_TYPEHASH: constant(bytes32) = keccak256(
    "ProofOfComputation(bytes32 commitment,uint256 window,address agreement,bytes32 windowHash)"
)
REVEAL_TYPEHASH: constant(bytes32) = keccak256(
    "Reveal(address agreement,uint256 window,bool present,bytes result,bytes32 secret)"
)


struct Signature:
    # EIP-2098 compact signature: r and (v - 27) << 255 | s.
    r: bytes32
    vs: bytes32


struct Terms:
    parties: DynArray[address, MAX_PARTIES]
    sensors: DynArray[address, MAX_SENSORS]
    start_points: DynArray[uint64, MAX_SENSORS]
    window_size: uint64
    sliding_factor: uint64
    function_name: String[MAX_NAME]
    function_hash: bytes32
    nodes: DynArray[address, MAX_NODES]
    node_parties: DynArray[uint8, MAX_NODES]
    qos: uint8
    reward: uint256
    reaction: uint8
    payer: uint8
    payee: uint8
    amount: uint256
    expiry: uint64
    signing: uint8
    leader: uint8


struct ProofEvidence:
    author: uint8
    commitment: bytes32
    window_hash: bytes32
    signature: Signature


struct RevealEvidence:
    author: uint8
    present: bool
    result: Bytes[MAX_RESULT]
    secret: bytes32
    signature: Signature


struct DisputeRecord:
    window: uint256
    kind: uint8
    opener: address
    evidence_hash: bytes32
    data_hash: bytes32
    block: uint256


event Activated:
    registry: indexed(address)
    factory: indexed(address)
    terms_hash: bytes32

event Deposited:
    party: indexed(address)
    amount: uint256

event Updated:
    window: indexed(uint256)
    result: Bytes[MAX_RESULT]
    window_hash: bytes32
    proofs_hash: bytes32

event UpdatedWithData:
    window: indexed(uint256)
    result: Bytes[MAX_RESULT]
    window_hash: bytes32
    proofs_hash: bytes32
    data_hash: bytes32

event Actuation:
    window: indexed(uint256)
    command: Bytes[MAX_RESULT]

event ReactionPaid:
    window: indexed(uint256)
    payer: indexed(address)
    payee: indexed(address)
    amount: uint256
    shortfall: uint256

event ArrearsSettled:
    payer: indexed(address)
    payee: indexed(address)
    amount: uint256

event RewardClaimed:
    node: indexed(address)
    party: indexed(address)
    windows: uint256
    amount: uint256

event Disputed:
    window: indexed(uint256)
    opener: indexed(address)
    index: uint256
    kind: uint8
    proofs: DynArray[ProofEvidence, MAX_EVIDENCE]
    reveals: DynArray[RevealEvidence, MAX_EVIDENCE]
    data_hash: bytes32

event EscrowReleased:
    party: indexed(address)
    amount: uint256

event Withdrawn:
    account: indexed(address)
    amount: uint256


REGISTRY: public(immutable(address))
CREATED_AT: public(immutable(uint256))
PARTIES: immutable(DynArray[address, MAX_PARTIES])
SENSORS: immutable(DynArray[address, MAX_SENSORS])
START_POINTS: immutable(DynArray[uint64, MAX_SENSORS])
WINDOW_SIZE: public(immutable(uint64))
SLIDING_FACTOR: public(immutable(uint64))
FUNCTION_NAME: public(immutable(String[MAX_NAME]))
FUNCTION_HASH: public(immutable(bytes32))
NODES: immutable(DynArray[address, MAX_NODES])
NODE_PARTIES: immutable(DynArray[uint8, MAX_NODES])
QOS: public(immutable(uint8))
REWARD: public(immutable(uint256))
REACTION: public(immutable(uint8))
PAYER: public(immutable(address))
PAYEE: public(immutable(address))
PAYER_INDEX: immutable(uint8)
PAYEE_INDEX: immutable(uint8)
AMOUNT: public(immutable(uint256))
EXPIRY: public(immutable(uint64))
SIGNING: public(immutable(uint8))
LEADER: public(immutable(uint8))
FACTORY: public(immutable(address))
DOMAIN_SEPARATOR: public(immutable(bytes32))
TERMS_HASH: public(immutable(bytes32))

records: HashMap[uint256, bytes32]
escrow: public(HashMap[address, uint256])
credit: public(HashMap[address, uint256])
reward_cursor: public(HashMap[address, uint256])
arrears: public(uint256)
dispute_count: public(uint256)
disputes: HashMap[uint256, DisputeRecord]
disputed: HashMap[bytes32, bool]  # keccak256(t, kind, opener): one dispute of a kind per window per node


@internal
@pure
def _packed(words: Bytes[1024], count: uint256) -> bytes32:
    # EIP-712 encodeData of an array of atomic values: keccak256 of the 32-byte words,
    # i.e. the ABI encoding of the array without its offset and length words.
    return keccak256(slice(words, 64, 32 * count))


@deploy
def __init__(registry: address, terms: Terms, approvals: DynArray[Signature, MAX_PARTIES]):
    n_parties: uint256 = len(terms.parties)
    n_nodes: uint256 = len(terms.nodes)
    n_sensors: uint256 = len(terms.sensors)
    assert n_parties >= 2, "an agreement needs at least two parties"
    assert n_nodes >= 2, "an agreement needs at least two intermediate nodes"
    assert n_sensors >= 1, "an agreement needs at least one sensor"
    assert len(terms.start_points) == n_sensors, "one window start point per sensor"
    assert len(terms.node_parties) == n_nodes, "one trusting party per node"
    assert terms.window_size >= 1 and terms.sliding_factor >= 1, "window size and sliding factor must be >= 1"
    assert len(terms.function_name) > 0, "the off-chain function needs a name"
    assert terms.function_hash != empty(bytes32), "the off-chain function needs its source hash"
    assert terms.qos <= QOS_ONCHAIN_PROOF, "unknown quality of service"
    assert terms.reaction <= REACTION_PAY_PER_UNIT, "unknown reaction"
    assert convert(terms.expiry, uint256) > block.timestamp, "the expiry must be in the future"
    assert terms.signing <= SIGNING_FAST, "unknown signing mode"
    assert terms.leader == LEADER_ROTATING or convert(terms.leader, uint256) < n_nodes, "the leader must be a node index or rotating (255)"
    for i: uint256 in range(n_parties, bound=MAX_PARTIES):
        assert terms.parties[i] != empty(address), "a party may not be the zero address"
        for j: uint256 in range(i, bound=MAX_PARTIES):
            if j > i and j < n_parties:
                assert terms.parties[i] != terms.parties[j], "parties must be distinct"
    for i: uint256 in range(n_nodes, bound=MAX_NODES):
        assert terms.nodes[i] != empty(address), "a node may not be the zero address"
        assert convert(terms.node_parties[i], uint256) < n_parties, "a node's trusting party is not a party"
        for j: uint256 in range(i, bound=MAX_NODES):
            if j > i and j < n_nodes:
                assert terms.nodes[i] != terms.nodes[j], "nodes must be distinct"
    for i: uint256 in range(n_sensors, bound=MAX_SENSORS):
        assert terms.sensors[i] != empty(address), "a sensor may not be the zero address"
        for j: uint256 in range(i, bound=MAX_SENSORS):
            if j > i and j < n_sensors:
                assert terms.sensors[i] != terms.sensors[j], "sensors must be distinct"
    if terms.reaction >= REACTION_PAY_FIXED:
        assert convert(terms.payer, uint256) < n_parties and convert(terms.payee, uint256) < n_parties, "payer and payee must be parties"
        assert terms.payer != terms.payee, "payer and payee must differ"
        assert terms.amount > 0, "a payment reaction needs a positive amount"

    REGISTRY = registry
    CREATED_AT = block.number
    PARTIES = terms.parties
    SENSORS = terms.sensors
    START_POINTS = terms.start_points
    WINDOW_SIZE = terms.window_size
    SLIDING_FACTOR = terms.sliding_factor
    FUNCTION_NAME = terms.function_name
    FUNCTION_HASH = terms.function_hash
    NODES = terms.nodes
    NODE_PARTIES = terms.node_parties
    QOS = terms.qos
    REWARD = terms.reward
    REACTION = terms.reaction
    payer: address = empty(address)
    payee: address = empty(address)
    if terms.reaction >= REACTION_PAY_FIXED:
        payer = terms.parties[convert(terms.payer, uint256)]
        payee = terms.parties[convert(terms.payee, uint256)]
    PAYER = payer
    PAYEE = payee
    PAYER_INDEX = terms.payer
    PAYEE_INDEX = terms.payee
    AMOUNT = terms.amount
    EXPIRY = terms.expiry
    SIGNING = terms.signing
    LEADER = terms.leader
    FACTORY = msg.sender
    DOMAIN_SEPARATOR = keccak256(
        abi_encode(DOMAIN_TYPEHASH, keccak256("DIVERSITY"), keccak256("1"), chain.id, self)
    )
    terms_hash: bytes32 = keccak256(
        abi_encode(
            TERMS_TYPEHASH,
            self._packed(abi_encode(terms.parties), n_parties),
            self._packed(abi_encode(terms.sensors), n_sensors),
            self._packed(abi_encode(terms.start_points), n_sensors),
            terms.window_size,
            terms.sliding_factor,
            keccak256(terms.function_name),
            terms.function_hash,
            self._packed(abi_encode(terms.nodes), n_nodes),
            self._packed(abi_encode(terms.node_parties), n_nodes),
            terms.qos,
            terms.reward,
            terms.reaction,
            terms.payer,
            terms.payee,
            terms.amount,
            terms.expiry,
            terms.signing,
            terms.leader,
        )
    )
    TERMS_HASH = terms_hash
    # The parties sign the terms in the factory's domain: the agreement's own address
    # is not known before it exists, and only that factory can create with them.
    terms_digest: bytes32 = keccak256(concat(b"\x19\x01", self._factory_domain(msg.sender), terms_hash))
    assert len(approvals) == n_parties, "every party must sign the terms"
    for i: uint256 in range(n_parties, bound=MAX_PARTIES):
        assert self._recover(terms_digest, approvals[i]) == terms.parties[i], "a party's signature of the terms is missing or invalid"
    log Activated(registry=registry, factory=msg.sender, terms_hash=terms_hash)


# -- signatures -----------------------------------------------------------------------

@internal
@view
def _digest(struct_hash: bytes32) -> bytes32:
    return keccak256(concat(b"\x19\x01", DOMAIN_SEPARATOR, struct_hash))


@internal
@pure
def _recover(digest: bytes32, signature: Signature) -> address:
    vs: uint256 = convert(signature.vs, uint256)
    return ecrecover(digest, 27 + (vs >> 255), convert(signature.r, uint256), vs & S_MASK)


@internal
@view
def _node_index(account: address) -> uint256:
    for i: uint256 in range(len(NODES), bound=MAX_NODES):
        if NODES[i] == account:
            return i
    raise "not a node of this agreement"


# -- activation -----------------------------------------------------------------------

@internal
@view
def _factory_domain(factory: address) -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, keccak256("DIVERSITY"), keccak256("1"), chain.id, factory))


@view
@external
def terms_digest() -> bytes32:
    """
    @notice The EIP-712 digest every party signed: the terms in the factory's domain.
    """
    return keccak256(concat(b"\x19\x01", self._factory_domain(FACTORY), TERMS_HASH))


# -- escrow ---------------------------------------------------------------------------

@internal
@view
def _is_party(account: address) -> bool:
    for p: address in PARTIES:
        if p == account:
            return True
    return False


@payable
@external
def deposit():
    """
    @notice Add msg.value to the caller's escrow (the caller must be a party). Arrears of
            the reaction's payer are settled first, straight to the payee's balance.
    """
    assert msg.value > 0, "deposit a positive amount"
    assert self._is_party(msg.sender), "only a party may deposit escrow"
    amount: uint256 = msg.value
    if msg.sender == PAYER and self.arrears > 0:
        settled: uint256 = min(amount, self.arrears)
        self.arrears -= settled
        self.credit[PAYEE] += settled
        amount -= settled
        log ArrearsSettled(payer=PAYER, payee=PAYEE, amount=settled)
    self.escrow[msg.sender] += amount
    log Deposited(party=msg.sender, amount=msg.value)


# -- update ---------------------------------------------------------------------------

@internal
def _pay(t: uint256, amount: uint256):
    available: uint256 = self.escrow[PAYER]
    paid: uint256 = min(amount, available)
    self.escrow[PAYER] = available - paid
    self.credit[PAYEE] += paid
    if paid < amount:
        self.arrears += amount - paid
    log ReactionPaid(window=t, payer=PAYER, payee=PAYEE, amount=paid, shortfall=amount - paid)


@internal
def _pay_per_unit(t: uint256, first_word: bytes32, length: uint256):
    assert length >= 32, "a PAY_PER_UNIT result starts with a uint256 word"
    self._pay(t, AMOUNT * convert(first_word, uint256))


# update and update_with_data repeat their few lines on purpose: an internal function
# would copy the result and the signatures into a second memory frame (~800 gas).

@external
def update(
    t: uint256,
    result: Bytes[MAX_RESULT],
    window_hash: bytes32,
    proofs_hash: bytes32,
    signatures: DynArray[Signature, MAX_NODES],
):
    """
    @notice Record f(w[t]) for window `t`, signed by every node (no-proof and off-chain QoS).
            Accepted once per window; an empty result is the null result and writes nothing.
            Runs the reaction; each node's reward for `t` is claimable from then on.
    @param t The window index.
    @param result f(w[t]), non-empty.
    @param window_hash H(w[t]).
    @param proofs_hash keccak256(c_1 || ... || c_n), the agreed commitments in node order (binds P_t).
    @param signatures Each node's signature of the Update struct (dataHash = 0), in node order.
    """
    assert QOS != QOS_ONCHAIN_PROOF, "this agreement keeps window data on-chain: use update_with_data"
    if len(result) == 0:
        return  # the null result writes nothing (paper 002, section 3)
    assert block.timestamp < convert(EXPIRY, uint256), "agreement has expired"
    assert self.records[t] == empty(bytes32), "window already updated"
    nodes: DynArray[address, MAX_NODES] = NODES
    assert len(signatures) == len(nodes), "one signature per node, in node order"
    record: bytes32 = keccak256(
        abi_encode(UPDATE_TYPEHASH, self, t, keccak256(result), window_hash, proofs_hash, empty(bytes32))
    )
    digest: bytes32 = keccak256(concat(b"\x19\x01", DOMAIN_SEPARATOR, record))
    for i: uint256 in range(len(nodes), bound=MAX_NODES):
        vs: uint256 = convert(signatures[i].vs, uint256)
        signer: address = ecrecover(digest, 27 + (vs >> 255), convert(signatures[i].r, uint256), vs & S_MASK)
        assert signer == nodes[i], "an update signature is not by its node"
    self.records[t] = record
    log Updated(window=t, result=result, window_hash=window_hash, proofs_hash=proofs_hash)
    if REACTION == REACTION_EMIT:
        log Actuation(window=t, command=result)
    elif REACTION == REACTION_PAY_FIXED:
        self._pay(t, AMOUNT)
    elif REACTION == REACTION_PAY_PER_UNIT:
        self._pay_per_unit(t, extract32(result, 0), len(result))


@external
def update_with_data(
    t: uint256,
    result: Bytes[MAX_RESULT],
    window_hash: bytes32,
    proofs_hash: bytes32,
    data: Bytes[MAX_DATA],
    signatures: DynArray[Signature, MAX_NODES],
):
    """
    @notice As update, under on-chain proof of storage: the window data travels in calldata
            and the nodes' signatures must cover dataHash = keccak256(data).
    @param t The window index.
    @param result f(w[t]), non-empty.
    @param window_hash H(w[t]).
    @param proofs_hash keccak256(c_1 || ... || c_n), the agreed commitments in node order (binds P_t).
    @param data The packed window data (pervasive.offchain.window_data.WindowData).
    @param signatures Each node's signature of the Update struct, in node order.
    """
    assert QOS == QOS_ONCHAIN_PROOF, "this agreement keeps no window data on-chain: use update"
    if len(result) == 0:
        return  # the null result writes nothing
    assert block.timestamp < convert(EXPIRY, uint256), "agreement has expired"
    assert self.records[t] == empty(bytes32), "window already updated"
    nodes: DynArray[address, MAX_NODES] = NODES
    assert len(signatures) == len(nodes), "one signature per node, in node order"
    data_hash: bytes32 = keccak256(data)
    record: bytes32 = keccak256(
        abi_encode(UPDATE_TYPEHASH, self, t, keccak256(result), window_hash, proofs_hash, data_hash)
    )
    digest: bytes32 = keccak256(concat(b"\x19\x01", DOMAIN_SEPARATOR, record))
    for i: uint256 in range(len(nodes), bound=MAX_NODES):
        vs: uint256 = convert(signatures[i].vs, uint256)
        signer: address = ecrecover(digest, 27 + (vs >> 255), convert(signatures[i].r, uint256), vs & S_MASK)
        assert signer == nodes[i], "an update signature is not by its node"
    self.records[t] = record
    log UpdatedWithData(window=t, result=result, window_hash=window_hash, proofs_hash=proofs_hash, data_hash=data_hash)
    if REACTION == REACTION_EMIT:
        log Actuation(window=t, command=result)
    elif REACTION == REACTION_PAY_FIXED:
        self._pay(t, AMOUNT)
    elif REACTION == REACTION_PAY_PER_UNIT:
        self._pay_per_unit(t, extract32(result, 0), len(result))


@view
@external
def record_of(t: uint256) -> bytes32:
    """
    @notice The commitment of window `t`'s record: the EIP-712 struct hash of its Update
            (zero when nothing was recorded). The full record is in the Updated event.
    @param t The window index.
    """
    return self.records[t]


# -- rewards and withdrawals ----------------------------------------------------------

@external
def claim_reward(node: address, windows: DynArray[uint256, MAX_CLAIM]):
    """
    @notice Credit node `node` REWARD for each recorded window in `windows` (strictly
            increasing, each after the last window it claimed), paid from the escrow of
            the party that trusts it. Anyone may call it; the credit goes to the node.
            Rewards are claimed against the record map so that an update writes no
            reward counter (see docs/agreement-contract.md).
    @param node A node of the agreement.
    @param windows Recorded windows not yet claimed by this node, in increasing order.
    """
    i: uint256 = self._node_index(node)
    assert len(windows) > 0, "name the windows to claim"
    cursor: uint256 = self.reward_cursor[node]
    for t: uint256 in windows:
        assert t >= cursor, "windows must increase and follow the last claimed window"
        assert self.records[t] != empty(bytes32), "a window has no record"
        cursor = t + 1
    amount: uint256 = len(windows) * REWARD
    party: address = PARTIES[convert(NODE_PARTIES[i], uint256)]
    assert self.escrow[party] >= amount, "the trusting party's escrow cannot pay these rewards yet"
    self.reward_cursor[node] = cursor
    self.escrow[party] -= amount
    self.credit[node] += amount
    log RewardClaimed(node=node, party=party, windows=len(windows), amount=amount)


@external
def release_escrow():
    """
    @notice Once the claim period after expiry is over, move the caller's remaining escrow
            to its balance (arrears are paid to the payee first).
    """
    assert block.timestamp >= convert(EXPIRY, uint256) + CLAIM_PERIOD, "escrow is locked until the claim period after expiry ends"
    assert self._is_party(msg.sender), "only a party has escrow"
    amount: uint256 = self.escrow[msg.sender]
    assert amount > 0, "no escrow to release"
    if msg.sender == PAYER and self.arrears > 0:
        settled: uint256 = min(amount, self.arrears)
        self.arrears -= settled
        self.credit[PAYEE] += settled
        amount -= settled
        log ArrearsSettled(payer=PAYER, payee=PAYEE, amount=settled)
    self.escrow[msg.sender] = 0
    self.credit[msg.sender] += amount
    log EscrowReleased(party=msg.sender, amount=amount)


@external
@nonreentrant
def withdraw():
    """
    @notice Send the caller its whole balance (reaction payments, rewards, released escrow).
    """
    amount: uint256 = self.credit[msg.sender]
    assert amount > 0, "nothing to withdraw"
    self.credit[msg.sender] = 0
    log Withdrawn(account=msg.sender, amount=amount)
    send(msg.sender, amount)


# -- disputes -------------------------------------------------------------------------

@internal
@view
def _check_proof(t: uint256, proof: ProofEvidence):
    assert convert(proof.author, uint256) < len(NODES), "evidence names an unknown node"
    digest: bytes32 = self._digest(
        keccak256(abi_encode(PROOF_TYPEHASH, proof.commitment, t, self, proof.window_hash))
    )
    assert self._recover(digest, proof.signature) == NODES[convert(proof.author, uint256)], "a proof of computation in the evidence is not signed by its node"


@internal
@view
def _check_reveal(t: uint256, reveal: RevealEvidence):
    assert convert(reveal.author, uint256) < len(NODES), "evidence names an unknown node"
    assert reveal.present or len(reveal.result) == 0, "a null reveal carries no result"
    digest: bytes32 = self._digest(
        keccak256(abi_encode(REVEAL_TYPEHASH, self, t, reveal.present, keccak256(reveal.result), reveal.secret))
    )
    assert self._recover(digest, reveal.signature) == NODES[convert(reveal.author, uint256)], "a reveal in the evidence is not signed by its node"


@internal
@pure
def _opens(reveal: RevealEvidence, node: address, commitment: bytes32) -> bool:
    return keccak256(abi_encode(reveal.present, reveal.result, reveal.secret, node)) == commitment


@external
def dispute(
    t: uint256,
    kind: uint8,
    proofs: DynArray[ProofEvidence, MAX_EVIDENCE],
    reveals: DynArray[RevealEvidence, MAX_EVIDENCE],
    data: Bytes[MAX_DATA],
):
    """
    @notice Open a dispute on window `t` (only a node may). Every proof and reveal must be
            signed by the node it names; for kinds 1-3 the evidence must show the
            disagreement: differing window hashes (1), differing results (2), or a reveal
            that does not open its author's commitment (3). Kinds 4-6 (timeout, compact
            mismatch, invalid proof) are recorded as the opening node's claim. A node opens
            at most one dispute of each kind on a window, so a claim without evidence
            cannot be repeated to flood the record.
    @param t The window index.
    @param kind The dispute kind (1..6).
    @param proofs Signed proofs of computation for window t.
    @param reveals Signed reveals for window t.
    @param data The window data the opener holds (on-chain QoS), or empty.
    """
    opener: uint256 = self._node_index(msg.sender)
    assert kind >= DISPUTE_WINDOW_HASH and kind <= DISPUTE_LAST_KIND, "unknown dispute kind"
    key: bytes32 = keccak256(abi_encode(t, kind, msg.sender))
    assert not self.disputed[key], "this node already opened a dispute of this kind on this window"
    for proof: ProofEvidence in proofs:
        self._check_proof(t, proof)
    for reveal: RevealEvidence in reveals:
        self._check_reveal(t, reveal)
    shown: bool = kind > DISPUTE_BAD_REVEAL
    if kind == DISPUTE_WINDOW_HASH:
        for proof: ProofEvidence in proofs:
            if proof.window_hash != proofs[0].window_hash:
                shown = True
    elif kind == DISPUTE_RESULT:
        for reveal: RevealEvidence in reveals:
            if reveal.present != reveals[0].present or keccak256(reveal.result) != keccak256(reveals[0].result):
                shown = True
    elif kind == DISPUTE_BAD_REVEAL:
        for reveal: RevealEvidence in reveals:
            for proof: ProofEvidence in proofs:
                if proof.author == reveal.author and not self._opens(reveal, NODES[convert(reveal.author, uint256)], proof.commitment):
                    shown = True
    assert shown, "the evidence does not show the disagreement it claims"
    data_hash: bytes32 = empty(bytes32)
    if len(data) > 0:
        data_hash = keccak256(data)
    index: uint256 = self.dispute_count
    self.disputes[index] = DisputeRecord(
        window=t,
        kind=kind,
        opener=msg.sender,
        evidence_hash=keccak256(abi_encode(proofs, reveals)),
        data_hash=data_hash,
        block=block.number,
    )
    self.dispute_count = index + 1
    self.disputed[key] = True
    log Disputed(window=t, opener=msg.sender, index=index, kind=kind, proofs=proofs, reveals=reveals, data_hash=data_hash)


@view
@external
def dispute_at(index: uint256) -> DisputeRecord:
    """
    @notice The `index`-th dispute (0-based); the full evidence is in its Disputed event.
    @param index Below dispute_count().
    """
    assert index < self.dispute_count, "no such dispute"
    return self.disputes[index]


# -- the terms, for readers -----------------------------------------------------------

@view
@external
def terms() -> Terms:
    """
    @notice Every term of the agreement, exactly as the parties signed them.
    """
    return Terms(
        parties=PARTIES,
        sensors=SENSORS,
        start_points=START_POINTS,
        window_size=WINDOW_SIZE,
        sliding_factor=SLIDING_FACTOR,
        function_name=FUNCTION_NAME,
        function_hash=FUNCTION_HASH,
        nodes=NODES,
        node_parties=NODE_PARTIES,
        qos=QOS,
        reward=REWARD,
        reaction=REACTION,
        payer=PAYER_INDEX,
        payee=PAYEE_INDEX,
        amount=AMOUNT,
        expiry=EXPIRY,
        signing=SIGNING,
        leader=LEADER,
    )
