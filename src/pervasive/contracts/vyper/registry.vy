# pragma version ~=0.4.3
"""
@title Registry of users, sensors and intermediate nodes
@license Apache-2.0
@notice The mainContract of DIVERSITY (paper 002, section 3, "Implementation"):
        Ethereum accounts register the users, sensors and intermediate nodes that
        agreements refer to. Entities are stored as structs in this contract (the
        paper deploys one contract per entity; a struct costs a few storage slots
        instead of a whole contract deployment, and lookups need no external call).
        Ids are unique per kind and never reused, even after deactivation. Only an
        entity's owner (the account that registered it) may update or deactivate it.
        This contract makes no external calls, so every function is trivially
        checks-effects-interactions.
"""

MAX_ID: constant(uint256) = 64
MAX_FIELDS: constant(uint256) = 16
MAX_FIELD_NAME: constant(uint256) = 32
MAX_SENSOR_TYPE: constant(uint256) = 32
MAX_ENDPOINT: constant(uint256) = 256
MAX_PUBLIC_KEY: constant(uint256) = 64

# Closed set of field types, in this order: bool, int64, uint64, int256, uint256,
# string, bytes32, address, bytes. A field's type is stored as its index in this list.
FIELD_TYPE_COUNT: constant(uint8) = 9


struct SensorField:
    name: String[MAX_FIELD_NAME]
    field_type: uint8


struct User:
    id: String[MAX_ID]
    account: address
    owner: address
    active: bool


struct Sensor:
    id: String[MAX_ID]
    public_key: Bytes[MAX_PUBLIC_KEY]
    sensor_type: String[MAX_SENSOR_TYPE]
    fields: DynArray[SensorField, MAX_FIELDS]
    owner: address
    active: bool


struct IntermediateNode:
    id: String[MAX_ID]
    account: address
    public_key: Bytes[MAX_PUBLIC_KEY]
    endpoint: String[MAX_ENDPOINT]
    owner: address
    active: bool


event UserRegistered:
    key: indexed(bytes32)
    account: indexed(address)
    owner: indexed(address)
    id: String[MAX_ID]

event UserUpdated:
    key: indexed(bytes32)
    account: indexed(address)

event UserDeactivated:
    key: indexed(bytes32)

event SensorRegistered:
    key: indexed(bytes32)
    owner: indexed(address)
    id: String[MAX_ID]
    sensor_type: String[MAX_SENSOR_TYPE]
    public_key: Bytes[MAX_PUBLIC_KEY]
    field_count: uint256

event SensorUpdated:
    key: indexed(bytes32)
    sensor_type: String[MAX_SENSOR_TYPE]
    public_key: Bytes[MAX_PUBLIC_KEY]
    field_count: uint256

event SensorDeactivated:
    key: indexed(bytes32)

event NodeRegistered:
    key: indexed(bytes32)
    account: indexed(address)
    owner: indexed(address)
    id: String[MAX_ID]
    public_key: Bytes[MAX_PUBLIC_KEY]
    endpoint: String[MAX_ENDPOINT]

event NodeUpdated:
    key: indexed(bytes32)
    account: indexed(address)
    public_key: Bytes[MAX_PUBLIC_KEY]
    endpoint: String[MAX_ENDPOINT]

event NodeDeactivated:
    key: indexed(bytes32)

event AgreementFactorySet:
    factory: indexed(address)

event AgreementRecorded:
    agreement: indexed(address)
    creator: indexed(address)


deployer: public(immutable(address))
agreement_factory: public(address)

users: HashMap[bytes32, User]
user_keys: HashMap[uint256, bytes32]
user_count: public(uint256)
user_key_of_account: HashMap[address, bytes32]

sensors: HashMap[bytes32, Sensor]
sensor_keys: HashMap[uint256, bytes32]
sensor_count: public(uint256)

nodes: HashMap[bytes32, IntermediateNode]
node_keys: HashMap[uint256, bytes32]
node_count: public(uint256)
node_key_of_account: HashMap[address, bytes32]

agreement_count: public(uint256)
agreement_at: public(HashMap[uint256, address])
is_agreement: public(HashMap[address, bool])


@deploy
def __init__():
    deployer = msg.sender


# -- checks shared by every kind ------------------------------------------------------

@internal
@pure
def _key(id: String[MAX_ID]) -> bytes32:
    assert len(id) > 0, "an id may not be empty"
    return keccak256(id)


@internal
@pure
def _check_public_key(public_key: Bytes[MAX_PUBLIC_KEY]):
    if len(public_key) == 33:
        prefix: Bytes[1] = slice(public_key, 0, 1)
        assert prefix == b"\x02" or prefix == b"\x03", "a compressed public key starts with 02 or 03"
    else:
        assert len(public_key) == 64, "a public key is 64 bytes (x || y) or 33 bytes compressed"


@internal
@pure
def _check_fields(fields: DynArray[SensorField, MAX_FIELDS]):
    # Bounded by MAX_FIELDS; duplicate names are refused by the Python wrapper.
    for field: SensorField in fields:
        assert len(field.name) > 0, "a field name may not be empty"
        assert field.field_type < FIELD_TYPE_COUNT, "unknown field type"


# -- users ----------------------------------------------------------------------------

@external
def register_user(id: String[MAX_ID], account: address):
    """
    @notice Register user `id` for `account`; the caller becomes its owner.
    @dev Reverts if the id is taken or the account already belongs to an active user.
    @param id Unique user id (1-64 characters).
    @param account The Ethereum account that acts as this user in agreements.
    """
    key: bytes32 = self._key(id)
    assert self.users[key].owner == empty(address), "user id already registered"
    assert account != empty(address), "the user account may not be the zero address"
    assert self.user_key_of_account[account] == empty(bytes32), "account already belongs to a user"
    self.users[key] = User(id=id, account=account, owner=msg.sender, active=True)
    self.user_keys[self.user_count] = key
    self.user_count += 1
    self.user_key_of_account[account] = key
    log UserRegistered(key=key, account=account, owner=msg.sender, id=id)


@external
def update_user(id: String[MAX_ID], account: address):
    """
    @notice Move user `id` to a new `account`. Only its owner may.
    @param id The user's id.
    @param account The new account; it may not belong to another active user.
    """
    key: bytes32 = self._key(id)
    entry: User = self.users[key]
    assert entry.owner != empty(address), "unknown user"
    assert entry.owner == msg.sender, "only the user's owner may update it"
    assert entry.active, "user is deactivated"
    assert account != empty(address), "the user account may not be the zero address"
    assert account == entry.account or self.user_key_of_account[account] == empty(bytes32), "account already belongs to a user"
    self.user_key_of_account[entry.account] = empty(bytes32)
    self.user_key_of_account[account] = key
    self.users[key].account = account
    log UserUpdated(key=key, account=account)


@external
def deactivate_user(id: String[MAX_ID]):
    """
    @notice Deactivate user `id` for good; its id stays taken. Only its owner may.
    @param id The user's id.
    """
    key: bytes32 = self._key(id)
    entry: User = self.users[key]
    assert entry.owner != empty(address), "unknown user"
    assert entry.owner == msg.sender, "only the user's owner may deactivate it"
    assert entry.active, "user is deactivated"
    self.users[key].active = False
    self.user_key_of_account[entry.account] = empty(bytes32)
    log UserDeactivated(key=key)


@view
@external
def has_user(id: String[MAX_ID]) -> bool:
    """
    @notice Whether user `id` was ever registered (active or not).
    @param id The user's id.
    """
    return self.users[keccak256(id)].owner != empty(address)


@view
@external
def user(id: String[MAX_ID]) -> User:
    """
    @notice The user registered as `id`; reverts with "unknown user" otherwise.
    @param id The user's id.
    """
    entry: User = self.users[keccak256(id)]
    assert entry.owner != empty(address), "unknown user"
    return entry


@view
@external
def user_at(index: uint256) -> User:
    """
    @notice The `index`-th registered user, in registration order (0-based).
    @param index Below user_count().
    """
    assert index < self.user_count, "index out of range"
    return self.users[self.user_keys[index]]


@view
@external
def is_active_user(account: address) -> bool:
    """
    @notice Whether `account` is the account of an active user.
    @param account Any address.
    """
    return self.user_key_of_account[account] != empty(bytes32)


# -- sensors --------------------------------------------------------------------------

@external
def register_sensor(
    id: String[MAX_ID],
    public_key: Bytes[MAX_PUBLIC_KEY],
    sensor_type: String[MAX_SENSOR_TYPE],
    fields: DynArray[SensorField, MAX_FIELDS],
):
    """
    @notice Declare sensor `id`: d_s = {PU_s, c_s, type_1 x_1, ...}. The caller owns it.
    @param id Unique sensor id (1-64 characters).
    @param public_key PU_s, secp256k1: 64 bytes x || y, or 33 bytes compressed.
    @param sensor_type c_s, e.g. "temperature" or "lock".
    @param fields The declared variables x_i with their types (indices into the closed set).
    """
    key: bytes32 = self._key(id)
    assert self.sensors[key].owner == empty(address), "sensor id already registered"
    self._check_public_key(public_key)
    assert len(sensor_type) > 0, "a sensor type may not be empty"
    self._check_fields(fields)
    self.sensors[key] = Sensor(
        id=id,
        public_key=public_key,
        sensor_type=sensor_type,
        fields=fields,
        owner=msg.sender,
        active=True,
    )
    self.sensor_keys[self.sensor_count] = key
    self.sensor_count += 1
    log SensorRegistered(
        key=key,
        owner=msg.sender,
        id=id,
        sensor_type=sensor_type,
        public_key=public_key,
        field_count=len(fields),
    )


@external
def update_sensor(
    id: String[MAX_ID],
    public_key: Bytes[MAX_PUBLIC_KEY],
    sensor_type: String[MAX_SENSOR_TYPE],
    fields: DynArray[SensorField, MAX_FIELDS],
):
    """
    @notice Replace the key, type and declared fields of sensor `id`. Only its owner may.
    @param id The sensor's id.
    @param public_key The new PU_s (64 or 33 bytes).
    @param sensor_type The new c_s.
    @param fields The new declared variables.
    """
    key: bytes32 = self._key(id)
    owner: address = self.sensors[key].owner
    assert owner != empty(address), "unknown sensor"
    assert owner == msg.sender, "only the sensor's owner may update it"
    assert self.sensors[key].active, "sensor is deactivated"
    self._check_public_key(public_key)
    assert len(sensor_type) > 0, "a sensor type may not be empty"
    self._check_fields(fields)
    self.sensors[key].public_key = public_key
    self.sensors[key].sensor_type = sensor_type
    self.sensors[key].fields = fields
    log SensorUpdated(
        key=key, sensor_type=sensor_type, public_key=public_key, field_count=len(fields)
    )


@external
def deactivate_sensor(id: String[MAX_ID]):
    """
    @notice Deactivate sensor `id` for good; its id stays taken. Only its owner may.
    @param id The sensor's id.
    """
    key: bytes32 = self._key(id)
    owner: address = self.sensors[key].owner
    assert owner != empty(address), "unknown sensor"
    assert owner == msg.sender, "only the sensor's owner may deactivate it"
    assert self.sensors[key].active, "sensor is deactivated"
    self.sensors[key].active = False
    log SensorDeactivated(key=key)


@view
@external
def has_sensor(id: String[MAX_ID]) -> bool:
    """
    @notice Whether sensor `id` was ever registered (active or not).
    @param id The sensor's id.
    """
    return self.sensors[keccak256(id)].owner != empty(address)


@view
@external
def sensor(id: String[MAX_ID]) -> Sensor:
    """
    @notice The sensor declared as `id`; reverts with "unknown sensor" otherwise.
    @param id The sensor's id.
    """
    entry: Sensor = self.sensors[keccak256(id)]
    assert entry.owner != empty(address), "unknown sensor"
    return entry


@view
@external
def sensor_at(index: uint256) -> Sensor:
    """
    @notice The `index`-th registered sensor, in registration order (0-based).
    @param index Below sensor_count().
    """
    assert index < self.sensor_count, "index out of range"
    return self.sensors[self.sensor_keys[index]]


# -- intermediate nodes ---------------------------------------------------------------

@external
def register_node(
    id: String[MAX_ID],
    account: address,
    public_key: Bytes[MAX_PUBLIC_KEY],
    endpoint: String[MAX_ENDPOINT],
):
    """
    @notice Register intermediate node `id`; the caller becomes its owner.
    @param id Unique node id (1-64 characters).
    @param account The node's Ethereum account (it signs proofs of computation).
    @param public_key The node's secp256k1 public key (64 or 33 bytes).
    @param endpoint Where the node is reached, e.g. "mqtts://node1.example:8883".
    """
    key: bytes32 = self._key(id)
    assert self.nodes[key].owner == empty(address), "node id already registered"
    assert account != empty(address), "the node account may not be the zero address"
    assert self.node_key_of_account[account] == empty(bytes32), "account already belongs to a node"
    self._check_public_key(public_key)
    assert len(endpoint) > 0, "an endpoint may not be empty"
    self.nodes[key] = IntermediateNode(
        id=id,
        account=account,
        public_key=public_key,
        endpoint=endpoint,
        owner=msg.sender,
        active=True,
    )
    self.node_keys[self.node_count] = key
    self.node_count += 1
    self.node_key_of_account[account] = key
    log NodeRegistered(
        key=key, account=account, owner=msg.sender, id=id, public_key=public_key, endpoint=endpoint
    )


@external
def update_node(
    id: String[MAX_ID],
    account: address,
    public_key: Bytes[MAX_PUBLIC_KEY],
    endpoint: String[MAX_ENDPOINT],
):
    """
    @notice Replace the account, key and endpoint of node `id`. Only its owner may.
    @param id The node's id.
    @param account The new account; it may not belong to another active node.
    @param public_key The new public key (64 or 33 bytes).
    @param endpoint The new endpoint.
    """
    key: bytes32 = self._key(id)
    owner: address = self.nodes[key].owner
    old_account: address = self.nodes[key].account
    assert owner != empty(address), "unknown node"
    assert owner == msg.sender, "only the node's owner may update it"
    assert self.nodes[key].active, "node is deactivated"
    assert account != empty(address), "the node account may not be the zero address"
    assert account == old_account or self.node_key_of_account[account] == empty(bytes32), "account already belongs to a node"
    self._check_public_key(public_key)
    assert len(endpoint) > 0, "an endpoint may not be empty"
    self.node_key_of_account[old_account] = empty(bytes32)
    self.node_key_of_account[account] = key
    self.nodes[key].account = account
    self.nodes[key].public_key = public_key
    self.nodes[key].endpoint = endpoint
    log NodeUpdated(key=key, account=account, public_key=public_key, endpoint=endpoint)


@external
def deactivate_node(id: String[MAX_ID]):
    """
    @notice Deactivate node `id` for good; its id stays taken. Only its owner may.
    @param id The node's id.
    """
    key: bytes32 = self._key(id)
    owner: address = self.nodes[key].owner
    assert owner != empty(address), "unknown node"
    assert owner == msg.sender, "only the node's owner may deactivate it"
    assert self.nodes[key].active, "node is deactivated"
    self.nodes[key].active = False
    self.node_key_of_account[self.nodes[key].account] = empty(bytes32)
    log NodeDeactivated(key=key)


@view
@external
def has_node(id: String[MAX_ID]) -> bool:
    """
    @notice Whether node `id` was ever registered (active or not).
    @param id The node's id.
    """
    return self.nodes[keccak256(id)].owner != empty(address)


@view
@external
def node(id: String[MAX_ID]) -> IntermediateNode:
    """
    @notice The intermediate node registered as `id`; reverts with "unknown node" otherwise.
    @param id The node's id.
    """
    entry: IntermediateNode = self.nodes[keccak256(id)]
    assert entry.owner != empty(address), "unknown node"
    return entry


@view
@external
def node_at(index: uint256) -> IntermediateNode:
    """
    @notice The `index`-th registered node, in registration order (0-based).
    @param index Below node_count().
    """
    assert index < self.node_count, "index out of range"
    return self.nodes[self.node_keys[index]]


@view
@external
def is_active_node(account: address) -> bool:
    """
    @notice Whether `account` is the account of an active intermediate node.
    @param account Any address.
    """
    return self.node_key_of_account[account] != empty(bytes32)


# -- the hook for agreements ----------------------------------------------------------

@external
def set_agreement_factory(factory: address):
    """
    @notice Name the contract that creates agreements; the deployer may do this once.
    @dev The Agreement factory (next issue) calls record_agreement for each agreement it
         creates, so that agreements can be enumerated here and checked with is_agreement.
    @param factory The factory contract's address.
    """
    assert msg.sender == deployer, "only the deployer may set the agreement factory"
    assert self.agreement_factory == empty(address), "the agreement factory is already set"
    assert factory.is_contract, "the agreement factory must be a deployed contract"
    self.agreement_factory = factory
    log AgreementFactorySet(factory=factory)


@external
def record_agreement(agreement: address, creator: address):
    """
    @notice Record an agreement created by the agreement factory.
    @param agreement The new agreement contract.
    @param creator The account that asked the factory to create it.
    """
    assert msg.sender == self.agreement_factory, "only the agreement factory may record agreements"
    assert not self.is_agreement[agreement], "agreement already recorded"
    self.is_agreement[agreement] = True
    self.agreement_at[self.agreement_count] = agreement
    self.agreement_count += 1
    log AgreementRecorded(agreement=agreement, creator=creator)
