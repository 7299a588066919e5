# pragma version ~=0.4.3
"""
@title Agreement factory
@license Apache-2.0
@notice Creates DIVERSITY agreements (agreement.vy) from an ERC-5202 blueprint, after
        checking in the registry that every party is an active user, every node an
        active intermediate node, and every sensor an active registered sensor whose
        declared public key is the one given (so the sensor's address is known on-chain),
        then records the agreement in the registry (`record_agreement`).
        A blueprint rather than `create_copy_of`: the agreement's constructor runs, so its
        terms become immutables (no SLOAD when an update checks node signatures); a copy
        of runtime code has no constructor and would keep the terms in storage.
"""

MAX_PARTIES: constant(uint256) = 8
MAX_NODES: constant(uint256) = 8
MAX_SENSORS: constant(uint256) = 8
MAX_NAME: constant(uint256) = 64
MAX_ID: constant(uint256) = 64
MAX_FIELDS: constant(uint256) = 16
MAX_FIELD_NAME: constant(uint256) = 32
MAX_SENSOR_TYPE: constant(uint256) = 32
MAX_PUBLIC_KEY: constant(uint256) = 64


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


struct Signature:
    r: bytes32
    vs: bytes32


struct SensorField:
    name: String[MAX_FIELD_NAME]
    field_type: uint8


struct Sensor:
    id: String[MAX_ID]
    public_key: Bytes[MAX_PUBLIC_KEY]
    sensor_type: String[MAX_SENSOR_TYPE]
    fields: DynArray[SensorField, MAX_FIELDS]
    owner: address
    active: bool


interface Registry:
    def is_active_user(account: address) -> bool: view
    def is_active_node(account: address) -> bool: view
    def sensor(id: String[MAX_ID]) -> Sensor: view
    def record_agreement(agreement: address, creator: address): nonpayable


event AgreementCreated:
    agreement: indexed(address)
    creator: indexed(address)
    sensor_ids: DynArray[String[MAX_ID], MAX_SENSORS]


REGISTRY: public(immutable(address))
BLUEPRINT: public(immutable(address))
created: public(HashMap[bytes32, address])


@deploy
def __init__(registry: address, blueprint: address):
    assert registry.is_contract, "the registry must be a deployed contract"
    assert blueprint.is_contract, "the agreement blueprint must be deployed"
    REGISTRY = registry
    BLUEPRINT = blueprint


@internal
@pure
def _matches(registered: Bytes[MAX_PUBLIC_KEY], key: Bytes[64]) -> bool:
    # The registry holds 64-byte keys x||y or 33-byte compressed ones 02/03||x.
    if len(registered) == 64:
        return keccak256(registered) == keccak256(key)
    y_odd: uint256 = convert(extract32(key, 32), uint256) & 1
    prefix: Bytes[1] = b"\x02"
    if y_odd == 1:
        prefix = b"\x03"
    return keccak256(registered) == keccak256(concat(prefix, slice(key, 0, 32)))


@external
def create(
    terms: Terms,
    sensor_ids: DynArray[String[MAX_ID], MAX_SENSORS],
    sensor_keys: DynArray[Bytes[64], MAX_SENSORS],
    approvals: DynArray[Signature, MAX_PARTIES],
) -> address:
    """
    @notice Create agreement `terms`, signed by every party (EIP-712, this factory's
            domain), after checking its parties, nodes and sensors in the registry.
            The same terms create at most one agreement.
    @param terms The agreement's terms (the agreement checks their shape itself).
    @param sensor_ids The registry id of each sensor of terms.sensors, in the same order.
    @param sensor_keys Each sensor's 64-byte public key x||y (its address is keccak256 of it).
    @param approvals Each party's signature of the terms, in party order (checked by the agreement).
    @return The new agreement's address.
    """
    assert len(sensor_ids) == len(terms.sensors) and len(sensor_keys) == len(terms.sensors), "one id and one key per sensor"
    registry: Registry = Registry(REGISTRY)
    for party: address in terms.parties:
        assert staticcall registry.is_active_user(party), "a party is not an active registered user"
    for node: address in terms.nodes:
        assert staticcall registry.is_active_node(node), "a node is not an active registered intermediate node"
    for i: uint256 in range(len(terms.sensors), bound=MAX_SENSORS):
        sensor_key: Bytes[64] = sensor_keys[i]
        assert len(sensor_key) == 64, "a sensor key is given as 64 bytes x||y"
        declared: Sensor = staticcall registry.sensor(sensor_ids[i])
        assert declared.active, "a sensor is deactivated"
        assert self._matches(declared.public_key, sensor_key), "a sensor key differs from its registry declaration"
        assert convert(convert(keccak256(sensor_key), uint256) & (2**160 - 1), address) == terms.sensors[i], "a sensor address does not match its public key"
    key: bytes32 = keccak256(abi_encode(terms))
    assert self.created[key] == empty(address), "these terms already created an agreement"
    agreement: address = create_from_blueprint(BLUEPRINT, REGISTRY, terms, approvals, salt=key)
    self.created[key] = agreement
    extcall registry.record_agreement(agreement, msg.sender)
    log AgreementCreated(agreement=agreement, creator=msg.sender, sensor_ids=sensor_ids)
    return agreement
