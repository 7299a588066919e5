# pragma version ~=0.4.3
"""
@title A consumer of the oracle hub for the tests: paper 001's Shipping contract, reduced
@license Apache-2.0
@notice Asks the hub for a shipment cost (`oraclize_query("URL", ".../ShipmentCost?device=...")`)
        and keeps the last answer; only the hub may call `oracle_callback`.
"""

interface OracleHub:
    def query(kind: uint8, source: String[256], path: String[64]) -> uint256: nonpayable

event CostQuoted:
    query_id: indexed(uint256)
    cost: uint256
    digest: bytes32

HUB: public(immutable(address))
cost: public(HashMap[uint256, uint256])
last_query: public(uint256)


@deploy
def __init__(hub: address):
    HUB = hub


@external
def ask(kind: uint8, source: String[256], path: String[64]) -> uint256:
    """
    @notice Ask the hub for a value.
    @param kind 1 = URL, 2 = DEVICE, 3 = CID.
    @param source What to observe.
    @param path JSON path to the integer.
    @return The query id.
    """
    query_id: uint256 = extcall OracleHub(HUB).query(kind, source, path)
    self.last_query = query_id
    return query_id


@external
def oracle_callback(query_id: uint256, answer: uint256, digest: bytes32):
    """
    @notice The hub's answer.
    @param query_id The query answered.
    @param answer The agreed integer.
    @param digest keccak256 of the response bytes the oracles observed.
    """
    assert msg.sender == HUB, "only the oracle hub may answer"
    self.cost[query_id] = answer
    log CostQuoted(query_id=query_id, cost=answer, digest=digest)
