"""Typed records the ledger hands out: receipts and logs (no dicts cross the boundary)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from eth_utils.address import to_checksum_address

__all__ = ["Log", "Receipt"]


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def _int(value: Any) -> int:
    # web3's formatted mappings carry ints; raw JSON-RPC batch results carry 0x-hex
    return int(value, 16) if isinstance(value, str) else int(value)


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return bytes.fromhex(str(value).removeprefix("0x"))


@dataclass(frozen=True)
class Log:
    """One event log, as emitted by a contract."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: str
    transaction_hash: str
    log_index: int
    removed: bool = False
    transaction_index: int | None = field(default=None, compare=False)
    """Position of the log's transaction in its block (the node's ``transactionIndex``);
    ``None`` when unknown (a log built by hand). Not part of the log's identity."""

    @property
    def key(self) -> tuple[str, int]:
        """Identity of this log within its block: (block hash, log index)."""
        return (self.block_hash, self.log_index)

    def retracted(self) -> Log:
        """This log marked ``removed``: its block left the canonical chain."""
        return replace(self, removed=True)

    @classmethod
    def from_rpc(cls, raw: Mapping[str, Any]) -> Log:
        """Build from web3's log mapping (or a raw JSON-RPC log object)."""
        index = raw.get("transactionIndex")
        return cls(
            address=to_checksum_address(raw["address"]),
            topics=tuple(_bytes(t) for t in raw["topics"]),
            data=_bytes(raw["data"]),
            block_number=_int(raw["blockNumber"]),
            block_hash=_hex(raw["blockHash"]),
            transaction_hash=_hex(raw["transactionHash"]),
            log_index=_int(raw["logIndex"]),
            removed=bool(raw.get("removed", False)),
            transaction_index=None if index is None else _int(index),
        )


@dataclass(frozen=True)
class Receipt:
    """The outcome of a mined transaction."""

    transaction_hash: str
    block_number: int
    block_hash: str
    status: int
    gas_used: int
    effective_gas_price: int
    contract_address: str | None
    logs: tuple[Log, ...]

    @property
    def succeeded(self) -> bool:
        """Whether the EVM executed the transaction without reverting."""
        return self.status == 1

    @property
    def fee(self) -> int:
        """Wei paid for the transaction."""
        return self.gas_used * self.effective_gas_price

    @classmethod
    def from_rpc(cls, raw: Mapping[str, Any]) -> Receipt:
        """Build from web3's receipt mapping (or a raw JSON-RPC receipt object)."""
        address = raw.get("contractAddress")
        return cls(
            transaction_hash=_hex(raw["transactionHash"]),
            block_number=_int(raw["blockNumber"]),
            block_hash=_hex(raw["blockHash"]),
            status=_int(raw["status"]),
            gas_used=_int(raw["gasUsed"]),
            effective_gas_price=_int(raw.get("effectiveGasPrice") or 0),
            contract_address=to_checksum_address(address) if address else None,
            logs=tuple(Log.from_rpc(log) for log in raw["logs"]),
        )
