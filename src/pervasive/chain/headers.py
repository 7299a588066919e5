"""Block headers as the chain hashes them: the anchor of an inclusion proof (paper 003).

A transaction is in a block when a Merkle-Patricia branch leads from the header's
``transactionsRoot`` to it; the header is the block when its RLP hashes to the block
hash. :func:`encode_header_fields` rebuilds that RLP from a JSON-RPC block object for
every fork up to Prague (``requestsHash``); :class:`BlockHeader` is what
:meth:`~pervasive.chain.rpc.RpcClient.block_header` returns once the hash checks.

Example::

    header = await ledger.rpc.block_header(12)
    assert keccak(header.encoded) == bytes.fromhex(header.hash[2:])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp

from pervasive.errors import InternalError

__all__ = ["BlockHeader", "encode_header_fields"]


@dataclass(frozen=True)
class BlockHeader:
    """A block's header as the chain hashes it, with the ids of its transactions.

    ``encoded`` is the header's RLP: ``keccak(encoded) == hash`` is checked before the
    record is handed out, so a verifier can trust ``encoded`` as far as it trusts ``hash``.
    """

    number: int
    hash: str
    parent_hash: str
    timestamp: int
    transactions_root: bytes
    transaction_hashes: tuple[str, ...]
    """In block order: position ``i`` is the transaction under key ``rlp(i)``."""
    encoded: bytes


# The header fields in RLP order, each with the fork that appended it (None: since
# genesis). A node leaves out the fields of forks it does not run, and so do we.
_HEADER_FIELDS = (
    "parentHash", "sha3Uncles", "miner", "stateRoot", "transactionsRoot", "receiptsRoot",
    "logsBloom", "difficulty", "number", "gasLimit", "gasUsed", "timestamp", "extraData",
    "mixHash", "nonce",
)  # fmt: skip
_LATER_HEADER_FIELDS = (  # London, Shanghai, Cancun (three), Prague
    "baseFeePerGas", "withdrawalsRoot", "blobGasUsed", "excessBlobGas",
    "parentBeaconBlockRoot", "requestsHash",
)  # fmt: skip
_INT_FIELDS = frozenset(
    {"difficulty", "number", "gasLimit", "gasUsed", "timestamp", "baseFeePerGas",
     "blobGasUsed", "excessBlobGas"}
)  # fmt: skip


def encode_header_fields(block: dict[str, Any]) -> bytes:
    """The RLP of a header from a JSON-RPC block object (``eth_getBlockBy*``, 0x-hex).

    A later fork's field is encoded only if present, and a field after a missing one
    would make a header no node produces, so the present fields must form a prefix.

    Example: ``keccak(encode_header_fields(block)) == bytes.fromhex(block["hash"][2:])``.
    """
    items: list[bytes | int] = []
    for name in _HEADER_FIELDS:
        items.append(_header_item(name, block[name]))
    present = [name for name in _LATER_HEADER_FIELDS if block.get(name) is not None]
    if present != list(_LATER_HEADER_FIELDS[: len(present)]):
        raise InternalError(f"a block object with header fields {present} matches no known fork")
    for name in present:
        items.append(_header_item(name, block[name]))
    return bytes(rlp.encode(items))


def _header_item(name: str, value: Any) -> bytes | int:
    text = str(value)
    if name in _INT_FIELDS:
        return int(text, 16) if isinstance(value, str) else int(value)
    return bytes.fromhex(text.removeprefix("0x"))
