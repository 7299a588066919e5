"""Litecoin regtest as the data chain B_d: the data index in an OP_RETURN output (paper 003 §V-B).

P posts, for each payment, one wallet-funded transaction whose OP_RETURN output carries
``b"PVX1" + payment_id + sha256(ciphertext)`` (68 of the 80 bytes standardness allows);
the ciphertext itself is served by P's Sys and checked with ``PostedIndex.matches``. The
notary committee answers a challenge (§V-C) by whether that posting is in the canonical
chain: :class:`LitecoinDataChain` follows the best chain block by block and keeps an index
by payment id; when the best chain no longer holds a block it followed (a reorganisation),
the block's postings leave the index. Inclusion is proven by litecoind's
``gettxoutproof`` and verified by our own walk of the partial Merkle tree
(:mod:`.merkle`); :func:`check_inclusion_proof` needs no node, and
:meth:`LitecoinDataChain.verify_inclusion` adds that the block is the one this follower
holds at that height.

Example::

    chain = LitecoinDataChain(node.rpc, wallet=node.wallet)
    tx_id = await chain.post_index(payment_id, consumer, ciphertext)
    await node.mine(1)
    posted = await chain.find_index(payment_id)
    assert posted is not None and posted.matches(ciphertext)
    assert chain.verify_inclusion(await chain.prove_inclusion(tx_id))
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

from bitcoin.core import CTransaction
from bitcoin.core.serialize import SerializationError

from pervasive.crosschain.chains import InclusionProof, PostedIndex
from pervasive.crosschain.errors import InclusionProofInvalid
from pervasive.crosschain.litecoin.merkle import (
    MerkleBlock,
    block_hash,
    block_header_merkle_root,
    extract_matches,
)
from pervasive.crosschain.litecoin.rpc import LitecoinRpc, LitecoinRpcError
from pervasive.errors import InvalidInput

__all__ = [
    "INDEX_TAG",
    "LitecoinDataChain",
    "check_inclusion_proof",
    "index_payload",
    "parse_index_payload",
    "transaction_id",
]

INDEX_TAG = b"PVX1"
"""The first bytes of a pervasive data-index OP_RETURN payload (format version 1)."""

_OP_RETURN = 0x6A
_PAYLOAD_SIZE = len(INDEX_TAG) + 32 + 32
_NOT_FOUND = -5


def index_payload(payment_id: bytes, ciphertext: bytes) -> bytes:
    """The OP_RETURN payload posting ``ciphertext`` for ``payment_id``.

    Example: ``index_payload(bytes(32), b"c")[:4] == b"PVX1"``.
    """
    if len(payment_id) != 32:
        raise InvalidInput(f"a payment id has 32 bytes, not {len(payment_id)}; pass the raw id")
    return INDEX_TAG + payment_id + hashlib.sha256(ciphertext).digest()


def parse_index_payload(script: bytes) -> tuple[bytes, bytes] | None:
    """``(payment_id, ciphertext_digest)`` if ``script`` is a pervasive OP_RETURN, else None.

    Example: ``parse_index_payload(bytes([0x6A, 68]) + index_payload(pid, c))[0] == pid``.
    """
    if len(script) < 2 or script[0] != _OP_RETURN:
        return None
    if script[1] == _PAYLOAD_SIZE:  # a direct push
        data = script[2:]
    elif script[1] == 0x4C and len(script) > 2 and script[2] == _PAYLOAD_SIZE:  # OP_PUSHDATA1
        data = script[3:]
    else:
        return None
    if len(data) != _PAYLOAD_SIZE or not data.startswith(INDEX_TAG):
        return None
    return data[4:36], data[36:]


def transaction_id(raw: bytes) -> str:
    """The txid (RPC hex) of a serialised transaction: its hash without witness data."""
    try:
        return str(CTransaction.deserialize(raw).GetTxid()[::-1].hex())
    except (SerializationError, ValueError, struct.error) as error:
        raise InclusionProofInvalid(f"the proof's transaction does not parse ({error})") from error


def check_inclusion_proof(proof: InclusionProof) -> None:
    """Check a Litecoin inclusion proof against the header it carries; no node consulted.

    Raises :class:`InclusionProofInvalid` saying which link fails: the header does not
    hash to ``block_hash``, the partial tree does not reach the header's Merkle root, the
    transaction does not hash to ``tx_id``, or the tree does not hold it at ``index``.
    """
    if len(proof.branch) != 1:
        raise InclusionProofInvalid("a Litecoin proof's branch is one serialised merkleblock")
    block = MerkleBlock.parse(proof.branch[0])
    if block.header != proof.header:
        raise InclusionProofInvalid("the merkleblock is for another header than the proof's")
    if block_hash(proof.header) != proof.block_hash:
        raise InclusionProofInvalid("the header does not hash to the proof's block hash")
    root, matches = extract_matches(block)
    if root != block_header_merkle_root(proof.header):
        raise InclusionProofInvalid("the Merkle branch does not reach the header's merkle root")
    if transaction_id(proof.transaction) != proof.tx_id:
        raise InclusionProofInvalid("the proof's transaction does not hash to its tx id")
    if (proof.index, bytes.fromhex(proof.tx_id)[::-1]) not in matches:
        raise InclusionProofInvalid(f"the branch does not prove {proof.tx_id} at {proof.index}")


@dataclass
class LitecoinDataChain:
    """The :class:`~pervasive.crosschain.chains.DataChain` port on a litecoind node.

    ``start_height`` is the first block followed (postings below it are never found).

    Example::

        chain = LitecoinDataChain(node.rpc, wallet=node.wallet)
        posted = await chain.find_index(payment_id)
    """

    rpc: LitecoinRpc
    wallet: str = "pervasive"
    name: str = "litecoin:regtest"
    start_height: int = 0
    _hashes: list[str] = field(default_factory=list, init=False, repr=False)
    _postings: dict[bytes, list[PostedIndex]] = field(default_factory=dict, init=False, repr=False)
    _by_block: dict[str, list[bytes]] = field(default_factory=dict, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _posting: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def post_index(self, payment_id: bytes, consumer: str, ciphertext: bytes) -> str:
        """Send a wallet-funded transaction with the index's OP_RETURN output; its txid.

        ``consumer`` is not written: the ciphertext is encrypted to the consumer and the
        payment id already names them on B_u; Litecoin keeps only the digest.
        """
        payload = index_payload(payment_id, ciphertext)
        existing = await self.find_index(payment_id)
        if existing is not None:
            raise InvalidInput(
                f"payment 0x{payment_id.hex()} already has its index in tx {existing.tx_id}; "
                "an index is posted once per payment"
            )
        # two postings in flight must not pick the same coin: the wallet locks what it
        # funds with, and one posting at a time goes from funding to the mempool
        async with self._posting:
            raw = await self.rpc.call("createrawtransaction", [], [{"data": payload.hex()}])
            funded = await self.rpc.call(
                "fundrawtransaction", raw, {"lockUnspents": True}, wallet=self.wallet
            )
            signed = await self.rpc.call(
                "signrawtransactionwithwallet", funded["hex"], wallet=self.wallet
            )
            if not signed["complete"]:
                raise InvalidInput(
                    f"the wallet {self.wallet!r} could not sign the posting; fund it"
                )
            return str(await self.rpc.call("sendrawtransaction", signed["hex"]))

    async def find_index(
        self, payment_id: bytes, *, provider: str | None = None
    ) -> PostedIndex | None:
        """The first posting for ``payment_id`` in the canonical chain (block order), or None.

        ``provider`` is ignored: an OP_RETURN output names no sender.
        """
        await self.sync()
        postings = self._postings.get(payment_id)
        return postings[0] if postings else None

    async def prove_inclusion(self, tx_id: str) -> InclusionProof | None:
        """A ``gettxoutproof`` proof of ``tx_id`` in its canonical block, or None."""
        _check_tx_id(tx_id)
        await self.sync()
        try:
            found = await self.rpc.call("getrawtransaction", tx_id, True)
        except LitecoinRpcError as error:
            if error.code == _NOT_FOUND:
                return None
            raise
        block = found.get("blockhash")
        if block is None:
            return None  # still in the mempool
        header = await self.rpc.call("getblockheader", block)
        if not self.is_canonical(header["height"], block):
            return None  # the txindex remembers blocks that were reorganised out
        merkle_hex = await self.rpc.call("gettxoutproof", [tx_id], block)
        raw_header = bytes.fromhex(await self.rpc.call("getblockheader", block, False))
        merkle_block = MerkleBlock.parse(bytes.fromhex(merkle_hex))
        _, [(index, _)] = extract_matches(merkle_block)
        return InclusionProof(
            chain=self.name,
            tx_id=tx_id,
            block_number=int(header["height"]),
            block_hash=block,
            header=raw_header,
            index=index,
            transaction=bytes.fromhex(found["hex"]),
            branch=(merkle_block.serialize(),),
        )

    def verify_inclusion(self, proof: InclusionProof) -> bool:
        """Whether ``proof`` holds and names the block this follower holds at that height.

        No node is consulted: the canonical view is the one the last ``sync`` (run by
        ``find_index`` and ``prove_inclusion``) saw.
        """
        if proof.chain != self.name:
            return False
        try:
            check_inclusion_proof(proof)
        except InclusionProofInvalid:
            return False
        return self.is_canonical(proof.block_number, proof.block_hash)

    def is_canonical(self, height: int, block: str) -> bool:
        """Whether the followed best chain has ``block`` at ``height``."""
        position = height - self.start_height
        return 0 <= position < len(self._hashes) and self._hashes[position] == block

    async def now(self) -> int:
        """The timestamp of the best block (unix seconds)."""
        best = await self.rpc.call("getbestblockhash")
        return int((await self.rpc.call("getblockheader", best))["time"])

    async def sync(self) -> None:
        """Follow the best chain: drop blocks it left, then read the new ones in order."""
        async with self._lock:
            while not await self._step():
                pass

    async def _step(self) -> bool:
        """One pass; False when the chain moved under us and a new pass is needed."""
        best_hash = await self.rpc.call("getbestblockhash")
        if self._hashes and self._hashes[-1] == best_hash:
            return True
        best = int(await self.rpc.call("getblockcount"))
        while self._hashes:
            height = self.start_height + len(self._hashes) - 1
            if height <= best and await self.rpc.call("getblockhash", height) == self._hashes[-1]:
                break
            self._drop_tip()
        for height in range(self.start_height + len(self._hashes), best + 1):
            block = await self.rpc.call("getblock", await self.rpc.call("getblockhash", height), 2)
            if self._hashes and block.get("previousblockhash") != self._hashes[-1]:
                return False
            self._apply(block)
        return True

    def _apply(self, block: dict[str, Any]) -> None:
        found: list[bytes] = []
        for tx in block["tx"]:
            for output in tx["vout"]:
                parsed = parse_index_payload(bytes.fromhex(output["scriptPubKey"]["hex"]))
                if parsed is None:
                    continue
                payment_id, digest = parsed
                posting = PostedIndex(
                    chain=self.name,
                    payment_id=payment_id,
                    tx_id=tx["txid"],
                    block_number=int(block["height"]),
                    block_hash=block["hash"],
                    block_time=int(block["time"]),
                    provider="",
                    consumer="",
                    ciphertext_digest=digest,
                )
                self._postings.setdefault(payment_id, []).append(posting)
                found.append(payment_id)
        self._by_block[block["hash"]] = found
        self._hashes.append(block["hash"])

    def _drop_tip(self) -> None:
        dropped = self._hashes.pop()
        for payment_id in self._by_block.pop(dropped, []):
            kept = [p for p in self._postings[payment_id] if p.block_hash != dropped]
            if kept:
                self._postings[payment_id] = kept
            else:
                del self._postings[payment_id]


def _check_tx_id(tx_id: str) -> None:
    try:
        valid = len(bytes.fromhex(tx_id)) == 32
    except ValueError:
        valid = False
    if not valid:
        raise InvalidInput(f"a Litecoin tx id is 64 hex digits without 0x, not {tx_id!r}")
