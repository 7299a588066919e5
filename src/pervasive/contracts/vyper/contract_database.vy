# pragma version ~=0.4.3
"""
@title Contract database C_d: the storage of one pervasive contract, kept across upgrades
@license Apache-2.0
@notice Paper 001, section 4: "for each smart contract C we create a new database
        contract C_d used only to store and retrieve data of C". The logic contract
        (the writer) keeps its records here instead of in its own storage, so a new
        version of the logic is deployed and made the writer while every record stays
        where it is: no migration. Only the writer writes; only the owner (the account
        that deployed C_d, the service's deployer) moves the writer.
        Records are 32-byte words under 32-byte keys; the typed getters and setters
        read and write the same word, so a record written as uint256 reads back through
        get_bytes32 too (how the CLI reads records of any declared type).
        Key convention: keccak256(abi_encode(record name, id)), both Strings.
"""

event WriterMoved:
    old: indexed(address)
    new: indexed(address)

# one event per write, cheap: the key as the one topic, the stored word as data
event RecordSet:
    key: indexed(bytes32)
    value: bytes32


owner: public(address)
writer: public(address)
words: HashMap[bytes32, bytes32]


@deploy
def __init__():
    """
    @notice Deploy an empty database owned by the deployer, with no writer yet.
    """
    self.owner = msg.sender


@external
def set_writer(new: address):
    """
    @notice Make `new` the only account that may write (the logic contract's new version).
    @dev Only the owner may. Emits WriterMoved(old, new).
    @param new The new writer; the zero address freezes the database.
    """
    assert msg.sender == self.owner, "only the owner may move the writer"
    old: address = self.writer
    self.writer = new
    log WriterMoved(old=old, new=new)


@internal
def _set(key: bytes32, val: bytes32):
    assert msg.sender == self.writer, "only the writer may write"
    self.words[key] = val
    log RecordSet(key=key, value=val)


@view
@external
def get_uint(key: bytes32) -> uint256:
    """
    @notice The record under `key` as a uint256 (0 when never written).
    @param key keccak256(abi_encode(record name, id)).
    """
    return convert(self.words[key], uint256)


@external
def set_uint(key: bytes32, val: uint256):
    """
    @notice Store `val` under `key`. Only the writer may.
    @param key keccak256(abi_encode(record name, id)).
    @param val The value.
    """
    self._set(key, convert(val, bytes32))


@view
@external
def get_address(key: bytes32) -> address:
    """
    @notice The record under `key` as an address (the zero address when never written).
    @param key keccak256(abi_encode(record name, id)).
    """
    return convert(convert(self.words[key], uint256), address)


@external
def set_address(key: bytes32, val: address):
    """
    @notice Store `val` under `key`. Only the writer may.
    @param key keccak256(abi_encode(record name, id)).
    @param val The address.
    """
    self._set(key, convert(val, bytes32))


@view
@external
def get_bool(key: bytes32) -> bool:
    """
    @notice The record under `key` as a bool (False when never written).
    @param key keccak256(abi_encode(record name, id)).
    """
    return self.words[key] != empty(bytes32)


@external
def set_bool(key: bytes32, val: bool):
    """
    @notice Store `val` under `key`. Only the writer may.
    @param key keccak256(abi_encode(record name, id)).
    @param val The flag.
    """
    self._set(key, convert(convert(val, uint256), bytes32))


@view
@external
def get_bytes32(key: bytes32) -> bytes32:
    """
    @notice The record under `key` as the stored 32-byte word (zero when never written).
    @param key keccak256(abi_encode(record name, id)).
    """
    return self.words[key]


@external
def set_bytes32(key: bytes32, val: bytes32):
    """
    @notice Store `val` under `key`. Only the writer may.
    @param key keccak256(abi_encode(record name, id)).
    @param val The word.
    """
    self._set(key, val)
