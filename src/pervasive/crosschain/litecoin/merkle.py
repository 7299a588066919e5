"""Bitcoin-style partial Merkle trees: verifying a ``gettxoutproof`` without trusting the node.

Paper 003 §V-C has the notary members decide a challenge by "the Merkle path
corresponding to rawTx in the canonical chain". On Litecoin (as on Bitcoin) a block's
header commits to its transactions by a binary Merkle tree of double SHA-256 over the
transaction ids, the last node of an odd level paired with itself. litecoind's
``gettxoutproof`` returns a ``merkleblock``: the 80-byte header, the block's transaction
count, and a depth-first partial tree (hashes plus one flag bit per visited node). This
module parses it, walks it exactly as Bitcoin Core's ``CPartialMerkleTree`` does (with
the CVE-2012-2459 check that refuses a duplicated right sibling), and compares the root
with the header's; the header's double SHA-256 is the block hash (Litecoin's scrypt PoW
hashes the same header but plays no part in naming the block). :func:`build_merkle_block`
is the inverse, used to prove several transactions at once and in tests.

Hashes are bytes in internal (little-endian) order; hex strings are in RPC (reversed)
order, as litecoind prints them.

Example::

    block = MerkleBlock.parse(bytes.fromhex(await rpc.call("gettxoutproof", [txid])))
    root, matches = extract_matches(block)     # raises InclusionProofInvalid
    assert root == block_header_merkle_root(block.header) and matches[0][1].hex() == ...
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from pervasive.crosschain.errors import InclusionProofInvalid

__all__ = [
    "HEADER_SIZE",
    "MAX_TRANSACTIONS",
    "MerkleBlock",
    "block_hash",
    "block_header_merkle_root",
    "build_merkle_block",
    "double_sha256",
    "extract_matches",
    "merkle_root",
]

HEADER_SIZE = 80
MAX_TRANSACTIONS = 4_000_000 // 240
"""Most transactions a block can hold (max weight / minimum transaction weight), as in Core."""


def double_sha256(data: bytes) -> bytes:
    """SHA-256 applied twice: Bitcoin's and Litecoin's hash for ids and Merkle nodes."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def block_hash(header: bytes) -> str:
    """The block hash, in RPC hex, of an 80-byte serialised header.

    Example: ``block_hash(bytes.fromhex(await rpc.call("getblockheader", h, False))) == h``.
    """
    if len(header) != HEADER_SIZE:
        raise InclusionProofInvalid(f"a block header has {HEADER_SIZE} bytes, not {len(header)}")
    return double_sha256(header)[::-1].hex()


def block_header_merkle_root(header: bytes) -> bytes:
    """The Merkle root (internal byte order) a serialised header commits to."""
    if len(header) != HEADER_SIZE:
        raise InclusionProofInvalid(f"a block header has {HEADER_SIZE} bytes, not {len(header)}")
    return header[36:68]


def merkle_root(txids: Sequence[bytes]) -> bytes:
    """The Merkle root of a whole block's transaction ids (internal order), odd levels padded."""
    if not txids:
        raise InclusionProofInvalid("a block has at least one transaction (its coinbase)")
    level = list(txids)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [double_sha256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


@dataclass(frozen=True)
class MerkleBlock:
    """A serialised ``merkleblock``: header, transaction count, hashes and flag bits."""

    header: bytes
    transaction_count: int
    hashes: tuple[bytes, ...]
    flags: bytes

    @classmethod
    def parse(cls, data: bytes) -> MerkleBlock:
        """Decode the bytes ``gettxoutproof`` returns (hex-decoded); trailing bytes are refused."""
        reader = _Reader(data)
        header = reader.take(HEADER_SIZE)
        (count,) = struct.unpack("<I", reader.take(4))
        hashes = tuple(reader.take(32) for _ in range(reader.compact_size(limit=MAX_TRANSACTIONS)))
        flags = reader.take(reader.compact_size(limit=MAX_TRANSACTIONS // 8 + 1))
        if reader.remaining:
            raise InclusionProofInvalid(
                f"the merkleblock has {reader.remaining} trailing bytes; send it unmodified"
            )
        return cls(header, count, hashes, flags)

    def serialize(self) -> bytes:
        """The wire form, as ``gettxoutproof`` prints it (hex-decoded)."""
        return (
            self.header
            + struct.pack("<I", self.transaction_count)
            + _compact_size(len(self.hashes))
            + b"".join(self.hashes)
            + _compact_size(len(self.flags))
            + self.flags
        )


def extract_matches(block: MerkleBlock) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Walk the partial tree; return its root and the matched (position, txid) leaves.

    The root is *not* compared with the header here: :func:`extract_matches` only says
    what the tree commits to; the caller compares it with ``block_header_merkle_root``.
    Raises :class:`InclusionProofInvalid` for any malformed or ambiguous tree.
    """
    count = block.transaction_count
    if count == 0 or count > MAX_TRANSACTIONS:
        raise InclusionProofInvalid(f"a block cannot hold {count} transactions")
    if len(block.hashes) > count:
        raise InclusionProofInvalid("the partial tree has more hashes than the block has txs")
    bits = [(byte >> i) & 1 == 1 for byte in block.flags for i in range(8)]
    if len(bits) < len(block.hashes):
        raise InclusionProofInvalid("the partial tree has fewer flag bits than hashes")
    walk = _Walk(count, block.hashes, bits)
    root = walk.traverse(_tree_height(count), 0)
    if (walk.bits_used + 7) // 8 != len(block.flags) or walk.hashes_used != len(block.hashes):
        raise InclusionProofInvalid("the partial tree does not use all its hashes and flag bytes")
    return root, walk.matches


def build_merkle_block(header: bytes, txids: Sequence[bytes], matched: set[int]) -> MerkleBlock:
    """The partial tree proving the leaves at positions ``matched`` of a block's ``txids``.

    Example: ``build_merkle_block(header, txids, {3}).serialize()`` equals what
    ``gettxoutproof`` returns for the fourth transaction.
    """
    count = len(txids)
    if count == 0:
        raise InclusionProofInvalid("a block has at least one transaction (its coinbase)")
    bits: list[bool] = []
    hashes: list[bytes] = []

    def build(height: int, position: int) -> None:
        first, end = position << height, min((position + 1) << height, count)
        parent_of_match = any(p in matched for p in range(first, end))
        bits.append(parent_of_match)
        if height == 0 or not parent_of_match:
            hashes.append(_subtree_hash(txids, height, position))
            return
        build(height - 1, position * 2)
        if position * 2 + 1 < _width(count, height - 1):
            build(height - 1, position * 2 + 1)

    build(_tree_height(count), 0)
    flags = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        flags[i // 8] |= bit << (i % 8)
    return MerkleBlock(header, count, tuple(hashes), bytes(flags))


def _width(count: int, height: int) -> int:
    return (count + (1 << height) - 1) >> height


def _tree_height(count: int) -> int:
    height = 0
    while _width(count, height) > 1:
        height += 1
    return height


def _subtree_hash(txids: Sequence[bytes], height: int, position: int) -> bytes:
    if height == 0:
        return txids[position]
    left = _subtree_hash(txids, height - 1, position * 2)
    if position * 2 + 1 < _width(len(txids), height - 1):
        right = _subtree_hash(txids, height - 1, position * 2 + 1)
    else:
        right = left
    return double_sha256(left + right)


class _Walk:
    """Bitcoin Core's CPartialMerkleTree::TraverseAndExtract, one flag bit per visited node."""

    def __init__(self, count: int, hashes: Sequence[bytes], bits: Sequence[bool]) -> None:
        self.count, self.hashes, self.bits = count, hashes, bits
        self.bits_used = self.hashes_used = 0
        self.matches: list[tuple[int, bytes]] = []

    def traverse(self, height: int, position: int) -> bytes:
        if self.bits_used >= len(self.bits):
            raise InclusionProofInvalid("the partial tree runs out of flag bits")
        parent_of_match = self.bits[self.bits_used]
        self.bits_used += 1
        if height == 0 or not parent_of_match:
            if self.hashes_used >= len(self.hashes):
                raise InclusionProofInvalid("the partial tree runs out of hashes")
            node = self.hashes[self.hashes_used]
            self.hashes_used += 1
            if height == 0 and parent_of_match:
                self.matches.append((position, node))
            return node
        left = self.traverse(height - 1, position * 2)
        if position * 2 + 1 < _width(self.count, height - 1):
            right = self.traverse(height - 1, position * 2 + 1)
            if right == left:
                # CVE-2012-2459: a duplicated sibling makes two transaction lists share a root.
                raise InclusionProofInvalid("the partial tree repeats a node as its own sibling")
        else:
            right = left
        return double_sha256(left + right)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def take(self, size: int) -> bytes:
        if size > self.remaining:
            raise InclusionProofInvalid("the merkleblock is truncated; send all its bytes")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def compact_size(self, *, limit: int) -> int:
        first = self.take(1)[0]
        if first < 0xFD:
            value = first
        else:
            width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
            value = int.from_bytes(self.take(width), "little")
        if value > limit:
            raise InclusionProofInvalid(f"the merkleblock announces {value} items (max {limit})")
        return value


def _compact_size(value: int) -> bytes:
    if value < 0xFD:
        return bytes([value])
    if value <= 0xFFFF:
        return b"\xfd" + value.to_bytes(2, "little")
    return b"\xfe" + value.to_bytes(4, "little")
