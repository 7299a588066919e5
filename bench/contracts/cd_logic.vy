# pragma version ~=0.4.3
"""
@title Bench logic of a pervasive contract keeping its records in its C_d
@license Apache-2.0
@notice Records `cost` per shipment id live in the contract database; VERSION tells v1
        from v2 (bench/contract_database_gas.py substitutes it). An upgrade deploys this
        again and moves C_d's writer: the records stay.
"""

interface ContractDatabase:
    def get_uint(key: bytes32) -> uint256: view
    def set_uint(key: bytes32, val: uint256): nonpayable

MAX_BATCH: constant(uint256) = 100
VERSION: constant(uint256) = 1

database: public(ContractDatabase)
operator: public(address)


@deploy
def __init__(database: address):
    """
    @notice Bind to contract database `database`; the deployer is the operator.
    """
    self.database = ContractDatabase(database)
    self.operator = msg.sender


@external
def put_many(ids: DynArray[String[16], MAX_BATCH], costs: DynArray[uint256, MAX_BATCH]):
    """
    @notice Store cost[ids[i]] = costs[i] in C_d (operator only).
    """
    assert msg.sender == self.operator, "only the operator writes"
    assert len(ids) == len(costs), "one cost per id"
    for i: uint256 in range(len(ids), bound=MAX_BATCH):
        extcall self.database.set_uint(keccak256(abi_encode("cost", ids[i])), costs[i])


@view
@external
def cost(id: String[16]) -> uint256:
    """
    @notice The cost of shipment `id`.
    """
    return staticcall self.database.get_uint(keccak256(abi_encode("cost", id)))


@pure
@external
def version() -> uint256:
    """
    @notice This logic's version.
    """
    return VERSION
