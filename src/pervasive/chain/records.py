"""Typed records the ledger hands out: receipts and logs (no dicts cross the boundary)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

__all__ = ["Log", "Receipt"]


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


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

    @property
    def key(self) -> tuple[str, int]:
        """Identity of this log within its block: (block hash, log index)."""
        return (self.block_hash, self.log_index)

    @classmethod
    def from_rpc(cls, raw: Mapping[str, Any]) -> Log:
        """Build from web3's log mapping."""
        return cls(
            address=to_checksum_address(raw["address"]),
            topics=tuple(_bytes(t) for t in raw["topics"]),
            data=_bytes(raw["data"]),
            block_number=int(raw["blockNumber"]),
            block_hash=_hex(raw["blockHash"]),
            transaction_hash=_hex(raw["transactionHash"]),
            log_index=int(raw["logIndex"]),
            removed=bool(raw.get("removed", False)),
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
        """Build from web3's receipt mapping."""
        address = raw.get("contractAddress")
        return cls(
            transaction_hash=_hex(raw["transactionHash"]),
            block_number=int(raw["blockNumber"]),
            block_hash=_hex(raw["blockHash"]),
            status=int(raw["status"]),
            gas_used=int(raw["gasUsed"]),
            effective_gas_price=int(raw.get("effectiveGasPrice") or 0),
            contract_address=to_checksum_address(address) if address else None,
            logs=tuple(Log.from_rpc(log) for log in raw["logs"]),
        )
