"""The typed Python wrapper of ``vyper/contract_database.vy``: a pervasive contract's C_d.

Paper 001, section 4: each contract C gets a database contract C_d that only stores
and returns C's data, so C's logic can be replaced (a new version made C_d's writer)
while the data stays. Records are 32-byte words under
``record_key(name, id) = keccak256(abi_encode(name, id))`` (both strings), exactly
the key a Vyper logic contract computes with ``keccak256(abi_encode(name, id))``.
:meth:`ContractDatabase.read` decodes a word as the record's declared type.

Unlike the per-chain contracts, a C_d is deployed once per pervasive contract
(:meth:`ContractDatabase.deploy`), and found by the address its service records.

Example::

    database = await ContractDatabase.deploy(ledger, owner)
    await database.set_writer(logic_address)                 # only the owner may
    await database.read("cost", "ship-1", "uint256")         # 0 until the logic writes it
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pervasive.chain import Ledger, Receipt, Signer
from pervasive.contracts.contract import Contract
from pervasive.contracts.deployments import deploy
from pervasive.contracts.handle import ContractHandle
from pervasive.crypto import abi_encode, checksum_address, keccak256
from pervasive.errors import InvalidInput

__all__ = [
    "CONTRACT_DATABASE",
    "RECORD_VALUE_TYPES",
    "ContractDatabase",
    "RecordValue",
    "decode_word",
    "record_key",
]

CONTRACT_DATABASE = "contract_database"
"""The contract's name: its source is ``vyper/contract_database.vy``."""

RECORD_VALUE_TYPES = ("uint256", "int256", "address", "bool", "bytes32")
"""The types a record's 32-byte word can be read as."""

RecordValue = int | str | bool | bytes


def record_key(name: str, record_id: str) -> bytes:
    """The C_d key of record ``name`` for ``record_id``: ``keccak256(abi_encode(name, id))``.

    Example: ``record_key("cost", "ship-1").hex()``.
    """
    if not isinstance(name, str) or not isinstance(record_id, str) or not name:
        raise InvalidInput("a record key needs a record name and an id, both strings")
    return keccak256(abi_encode(["string", "string"], [name, record_id]))


def decode_word(word: bytes, kind: str) -> RecordValue:
    """The 32-byte ``word`` read as ``kind`` (one of :data:`RECORD_VALUE_TYPES`).

    Example: ``decode_word((5).to_bytes(32, "big"), "uint256") == 5``.
    """
    if len(word) != 32:
        raise InvalidInput(f"a record word is 32 bytes, got {len(word)}")
    if kind == "uint256":
        return int.from_bytes(word, "big")
    if kind == "int256":
        return int.from_bytes(word, "big", signed=True)
    if kind == "address":
        return checksum_address(word[12:])
    if kind == "bool":
        return any(word)
    if kind == "bytes32":
        return word
    raise InvalidInput(f"unknown record type {kind!r}: use one of {', '.join(RECORD_VALUE_TYPES)}")


def _key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) != 32:
        raise InvalidInput("a C_d key is 32 bytes: use record_key(name, id)")
    return key


class ContractDatabase(ContractHandle):
    """A deployed C_d; writes are sent from ``signer`` (the owner, or the writer in tests)."""

    NAME = CONTRACT_DATABASE

    @classmethod
    async def deploy(cls, ledger: Ledger, owner: Signer, *, artifacts: Path | None = None) -> Self:
        """Deploy a new, empty C_d owned by ``owner``, with no writer yet.

        Example: ``database = await ContractDatabase.deploy(ledger, ledger.dev_signer(0))``.
        """
        artifact = cls.artifact(artifacts)
        deployment = await deploy(ledger, owner, artifact)
        return cls(Contract(ledger, deployment.address, artifact.abi), owner)

    # -- the writer ------------------------------------------------------------------------
    async def owner(self) -> str:
        """The account allowed to move the writer (the deployer)."""
        return checksum_address(await self.contract.call("owner"))

    async def writer(self) -> str:
        """The only account allowed to write (the zero address before the first one)."""
        return checksum_address(await self.contract.call("writer"))

    async def set_writer(self, new: str) -> Receipt:
        """Make ``new`` the only writer; reverts "only the owner may move the writer" otherwise.

        Example: ``await database.set_writer(logic_v2.address)``.
        """
        return await self._send("set_writer", checksum_address(new))

    # -- records ---------------------------------------------------------------------------
    async def word(self, key: bytes) -> bytes:
        """The 32-byte word stored under ``key`` (zeros when never written)."""
        return bytes(await self.contract.call("get_bytes32", _key(key)))

    async def read(self, name: str, record_id: str, kind: str) -> RecordValue:
        """Record ``name`` of ``record_id`` read as ``kind`` (its declared type).

        Example: ``await database.read("carrier", "ship-1", "address")``.
        """
        return decode_word(await self.word(record_key(name, record_id)), kind)

    async def get_uint(self, key: bytes) -> int:
        """The word under ``key`` as a uint256."""
        return int(await self.contract.call("get_uint", _key(key)))

    async def get_address(self, key: bytes) -> str:
        """The word under ``key`` as an address."""
        return checksum_address(await self.contract.call("get_address", _key(key)))

    async def get_bool(self, key: bytes) -> bool:
        """The word under ``key`` as a bool."""
        return bool(await self.contract.call("get_bool", _key(key)))

    async def set_uint(self, key: bytes, value: int) -> Receipt:
        """Store ``value`` under ``key``; reverts unless the signer is the writer."""
        return await self._send("set_uint", _key(key), value)

    async def set_address(self, key: bytes, value: str) -> Receipt:
        """Store the address ``value`` under ``key``; reverts unless the signer is the writer."""
        return await self._send("set_address", _key(key), checksum_address(value))

    async def set_bool(self, key: bytes, value: bool) -> Receipt:
        """Store ``value`` under ``key``; reverts unless the signer is the writer."""
        return await self._send("set_bool", _key(key), value)

    async def set_bytes32(self, key: bytes, value: bytes) -> Receipt:
        """Store the word ``value`` under ``key``; reverts unless the signer is the writer."""
        return await self._send("set_bytes32", _key(key), _key(value))
