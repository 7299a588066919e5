# pragma version ~=0.4.3
"""
@title Shipping: a shipment's cost from the oracle, kept in the contract database C_d
@license Apache-2.0
@notice Paper 001's Shipping contract (Fig. 1): "the Shipping contract requires to
        communicate with a device-specific locally-deployed service that calculates the
        shipment cost of a specific IoT device category", asked Oraclize-style as
        `oraclize_query("URL", "http://127.0.0.1/ShipmentCost?device=VerticalPump")`.
        Here the query goes to the platform's OracleHub; t of n registered oracle nodes
        sign what they observed and the hub calls `oracle_callback` with the agreed
        value. Every record lives in this contract's database C_d (section 4: "for each
        smart contract C we create a new database contract C_d used only to store and
        retrieve data of C"), under keccak256(abi_encode(record name, id)), so a new
        version of this logic keeps every shipment and cost.
        Records: created(bool), supplier(address), carrier(address), cost(uint256),
        query(uint256), and per pending query id: query_shipment(bytes32, the shipment
        id's bytes) and query_length(uint256).
"""

MAX_ID: constant(uint256) = 32
MAX_URL: constant(uint256) = 256
MAX_BASE: constant(uint256) = 160
URL_KIND: constant(uint8) = 1


interface ContractDatabase:
    def get_uint(key: bytes32) -> uint256: view
    def set_uint(key: bytes32, new_value: uint256): nonpayable
    def get_address(key: bytes32) -> address: view
    def set_address(key: bytes32, new_value: address): nonpayable
    def get_bool(key: bytes32) -> bool: view
    def set_bool(key: bytes32, new_value: bool): nonpayable
    def get_bytes32(key: bytes32) -> bytes32: view
    def set_bytes32(key: bytes32, new_value: bytes32): nonpayable


interface OracleHub:
    def query(kind: uint8, source: String[256], path: String[64]) -> uint256: nonpayable


event CostServiceSet:
    url: String[MAX_BASE]

event ShipmentCreated:
    key: indexed(bytes32)
    shipment: String[MAX_ID]
    device: String[MAX_ID]
    supplier: address
    carrier: address

event CostRequested:
    key: indexed(bytes32)
    shipment: String[MAX_ID]
    query_id: uint256
    source: String[MAX_URL]

event CostQuoted:
    key: indexed(bytes32)
    shipment: String[MAX_ID]
    query_id: uint256
    cost: uint256
    digest: bytes32


DATABASE: public(immutable(address))
ORACLE: public(immutable(address))
OPERATOR: public(immutable(address))
cost_service: public(String[MAX_BASE])


@deploy
def __init__(database: address, oracle: address, operator: address):
    assert database != empty(address), "the contract database may not be the zero address"
    assert oracle != empty(address), "the oracle hub may not be the zero address"
    assert operator != empty(address), "the operator may not be the zero address"
    DATABASE = database
    ORACLE = oracle
    OPERATOR = operator


@internal
@pure
def _record(name: String[16], id: String[78]) -> bytes32:
    # the C_d key rule every reader of the records shares (the CLI too)
    return keccak256(abi_encode(name, id))


@internal
@pure
def _key(id: String[MAX_ID]) -> bytes32:
    assert len(id) > 0, "a shipment id may not be empty"
    return keccak256(id)


@external
def set_cost_service(url: String[MAX_BASE]):
    """
    @notice Set the base URL of the ShipmentCost service the oracle asks (operator only).
    @param url e.g. "http://127.0.0.1:8080"; queries go to <url>/ShipmentCost?device=<device>.
    """
    assert msg.sender == OPERATOR, "only the operator may set the cost service"
    assert len(url) > 0, "the cost service URL may not be empty"
    self.cost_service = url
    log CostServiceSet(url=url)


@external
def create_shipment(shipment: String[MAX_ID], device: String[MAX_ID], supplier: address, carrier: address) -> uint256:
    """
    @notice Create `shipment` of a `device` category and ask the oracle for its cost.
    @dev The shipment's records go to C_d; the query id is returned and recorded.
    @param shipment Unique shipment id (1-32 characters), never reused.
    @param device The device category the cost service prices, e.g. "VerticalPump".
    @param supplier Who ships the goods.
    @param carrier Who carries the container.
    @return The oracle hub's query id.
    """
    key: bytes32 = self._key(shipment)
    assert len(device) > 0, "a device category may not be empty"
    assert supplier != empty(address), "the supplier may not be the zero address"
    assert carrier != empty(address), "the carrier may not be the zero address"
    assert len(self.cost_service) > 0, "no cost service yet: the operator sets it first"
    db: ContractDatabase = ContractDatabase(DATABASE)
    assert not staticcall db.get_bool(self._record("created", shipment)), "shipment id already used"
    extcall db.set_bool(self._record("created", shipment), True)
    extcall db.set_address(self._record("supplier", shipment), supplier)
    extcall db.set_address(self._record("carrier", shipment), carrier)
    log ShipmentCreated(key=key, shipment=shipment, device=device, supplier=supplier, carrier=carrier)
    source: String[MAX_URL] = concat(self.cost_service, "/ShipmentCost?device=", device)
    query_id: uint256 = extcall OracleHub(ORACLE).query(URL_KIND, source, "cost")
    extcall db.set_uint(self._record("query", shipment), query_id)
    pending: String[78] = uint2str(query_id)
    extcall db.set_bytes32(self._record("query_shipment", pending), convert(convert(shipment, Bytes[MAX_ID]), bytes32))
    extcall db.set_uint(self._record("query_length", pending), len(shipment))
    log CostRequested(key=key, shipment=shipment, query_id=query_id, source=source)
    return query_id


@external
def oracle_callback(query_id: uint256, answer: uint256, digest: bytes32):
    """
    @notice The oracle hub's answer to a cost query: store the cost (hub only, once).
    @param query_id The hub's query id.
    @param answer The cost in wei that t of n oracles observed.
    @param digest keccak256 of the exact response bytes they observed.
    """
    assert msg.sender == ORACLE, "only the oracle hub may answer"
    db: ContractDatabase = ContractDatabase(DATABASE)
    pending: String[78] = uint2str(query_id)
    packed: bytes32 = staticcall db.get_bytes32(self._record("query_shipment", pending))
    assert packed != empty(bytes32), "no pending cost query with this id"
    length: uint256 = staticcall db.get_uint(self._record("query_length", pending))
    shipment: String[MAX_ID] = convert(slice(packed, 0, length), String[MAX_ID])
    # answered once: the pending entry goes before anything else is written
    extcall db.set_bytes32(self._record("query_shipment", pending), empty(bytes32))
    extcall db.set_uint(self._record("cost", shipment), answer)
    log CostQuoted(key=keccak256(shipment), shipment=shipment, query_id=query_id, cost=answer, digest=digest)


@view
@external
def cost_of(shipment: String[MAX_ID]) -> uint256:
    """
    @notice The quoted cost of `shipment` in wei; 0 while the oracle has not answered.
    @param shipment The shipment's id.
    """
    db: ContractDatabase = ContractDatabase(DATABASE)
    assert staticcall db.get_bool(self._record("created", shipment)), "unknown shipment"
    return staticcall db.get_uint(self._record("cost", shipment))
