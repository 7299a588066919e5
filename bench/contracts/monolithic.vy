# pragma version ~=0.4.3
"""
@title Bench contract holding the same records in its own storage (no C_d)
@license Apache-2.0
@notice A new version is a new contract with empty storage: the owner migrates every
        record into it (`migrate`, in batches) before it can serve.
"""

MAX_BATCH: constant(uint256) = 100
VERSION: constant(uint256) = 1

records: HashMap[bytes32, uint256]
operator: public(address)


@deploy
def __init__():
    """
    @notice The deployer is the operator.
    """
    self.operator = msg.sender


@external
def put_many(ids: DynArray[String[16], MAX_BATCH], costs: DynArray[uint256, MAX_BATCH]):
    """
    @notice Store cost[ids[i]] = costs[i] (operator only).
    """
    assert msg.sender == self.operator, "only the operator writes"
    assert len(ids) == len(costs), "one cost per id"
    for i: uint256 in range(len(ids), bound=MAX_BATCH):
        self.records[keccak256(abi_encode("cost", ids[i]))] = costs[i]


@external
def migrate(keys: DynArray[bytes32, MAX_BATCH], values: DynArray[uint256, MAX_BATCH]):
    """
    @notice Copy records of the previous version by key (operator only): the upgrade.
    """
    assert msg.sender == self.operator, "only the operator migrates"
    assert len(keys) == len(values), "one value per key"
    for i: uint256 in range(len(keys), bound=MAX_BATCH):
        self.records[keys[i]] = values[i]


@view
@external
def cost(id: String[16]) -> uint256:
    """
    @notice The cost of shipment `id`.
    """
    return self.records[keccak256(abi_encode("cost", id))]


@pure
@external
def version() -> uint256:
    """
    @notice This contract's version.
    """
    return VERSION
