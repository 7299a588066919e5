# pragma version ~=0.4.3
"""
@title A consumer whose callback always reverts (tests: a broken consumer cannot block an answer)
@license Apache-2.0
"""

interface OracleHub:
    def query(kind: uint8, source: String[256], path: String[64]) -> uint256: nonpayable

HUB: public(immutable(address))


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
    return extcall OracleHub(HUB).query(kind, source, path)


@external
def oracle_callback(query_id: uint256, answer: uint256, digest: bytes32):
    """
    @notice Refuses every answer.
    @param query_id The query answered.
    @param answer The agreed integer.
    @param digest keccak256 of the response bytes.
    """
    raise "this consumer refuses every answer"
