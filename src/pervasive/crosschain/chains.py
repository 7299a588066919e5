"""The data chain B_d as the cross-chain protocol sees it: one small port and its records.

Paper 003, section V: the data provider P posts the (encrypted) data index on the data
chain B_d; the notary committee SP later decides a challenge by asking whether that
posting, or the consumer C's pay transaction on the user chain B_u, is in the canonical
chain. Both questions need the same three operations on any chain: post, find by payment
id, and prove inclusion of a transaction against a block header. :class:`DataChain` is
that port (``typing.Protocol``) so an EVM chain (:mod:`pervasive.crosschain.evm_chain`),
Litecoin regtest (:mod:`pervasive.crosschain.litecoin`) or, later, Fabric plug in alike.

The records are chain-neutral: ids and hashes are ``0x``-less lowercase hex strings on
Litecoin and ``0x``-prefixed on the EVM, exactly as the chain's own RPC spells them, and
``InclusionProof.branch`` holds whatever the chain's Merkle structure needs (the
Merkle-Patricia nodes on the EVM, the serialised ``merkleblock`` on Litecoin).

Example::

    tx_id = await chain.post_index(payment_id, consumer, ciphertext)
    posted = await chain.find_index(payment_id)          # None until mined, or if reorganised out
    proof = await chain.prove_inclusion(posted.tx_id)   # None if not in the canonical chain
    assert chain.verify_inclusion(proof)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["DataChain", "InclusionProof", "PostedIndex"]


@dataclass(frozen=True)
class PostedIndex:
    """A data index P posted for one payment, as found in the canonical chain."""

    chain: str
    """The :attr:`DataChain.name` of the chain it was found on."""
    payment_id: bytes
    """The 32-byte payment id (the ``Paid`` event's ``payment_id``)."""
    tx_id: str
    """The posting transaction's id, spelled as the chain spells it."""
    block_number: int
    block_hash: str
    block_time: int
    """The including block's timestamp (unix seconds): when the posting counts as done."""
    provider: str
    """Who posted: an EVM address, or on Litecoin the empty string (outputs carry no sender)."""
    consumer: str
    """The consumer the index is for (EVM address); empty on Litecoin, whose output omits it."""
    ciphertext_digest: bytes
    """SHA-256 of the ciphertext: what a chain with little room (Litecoin OP_RETURN) stores."""
    ciphertext: bytes | None = None
    """The encrypted index itself when the chain stores it (EVM); None when only the digest is."""

    def matches(self, ciphertext: bytes) -> bool:
        """Whether ``ciphertext`` (e.g. served by P's Sys) is the one posted.

        Example: ``posted.matches(await sys_client.fetch(payment_id))``.
        """
        return hashlib.sha256(ciphertext).digest() == self.ciphertext_digest


@dataclass(frozen=True)
class InclusionProof:
    """Evidence that one transaction is in one block, checkable without a node.

    ``verify_inclusion`` recomputes the block hash from ``header`` and the header's
    transaction root from ``transaction`` and ``branch``; whether that block is canonical
    (and deep enough) is the verifier's own question to its node.
    """

    chain: str
    """The :attr:`DataChain.name` of the chain the proof is about."""
    tx_id: str
    block_number: int
    block_hash: str
    header: bytes
    """The raw block header: its RLP on the EVM, the 80 serialised bytes on Litecoin."""
    index: int
    """The transaction's position in the block."""
    transaction: bytes
    """The raw (signed, serialised) transaction; its hash must be ``tx_id``."""
    branch: tuple[bytes, ...]
    """The chain's Merkle branch: trie nodes (EVM) or one serialised merkleblock (Litecoin)."""

    @property
    def size(self) -> int:
        """Bytes a verifier must receive: header, transaction and branch together."""
        return len(self.header) + len(self.transaction) + sum(len(node) for node in self.branch)


@runtime_checkable
class DataChain(Protocol):
    """The data chain B_d (and, for inclusion proofs, B_u): the protocol's one chain port.

    Implementations: :class:`pervasive.crosschain.evm_chain.EvmDataChain`, and the
    Litecoin adapter. Every method reads the canonical chain only: a posting that was
    reorganised out is neither found nor proven.
    """

    name: str
    """``"evm:<chain id>"`` or ``"litecoin:regtest"``."""

    async def post_index(self, payment_id: bytes, consumer: str, ciphertext: bytes) -> str:
        """Post the encrypted data index for ``payment_id``; returns the transaction id."""
        ...

    async def find_index(
        self, payment_id: bytes, *, provider: str | None = None
    ) -> PostedIndex | None:
        """The index posted for ``payment_id`` in the canonical chain, or None.

        With ``provider``, only that sender's posting counts where the chain records a
        sender (EVM); a chain whose postings name none (Litecoin) ignores it.
        """
        ...

    async def prove_inclusion(self, tx_id: str) -> InclusionProof | None:
        """A proof that ``tx_id`` is in a canonical block, or None if it is not in one."""
        ...

    def verify_inclusion(self, proof: InclusionProof) -> bool:
        """Whether ``proof`` holds against the header it carries (no node consulted)."""
        ...

    async def now(self) -> int:
        """The timestamp of the chain's latest block (unix seconds)."""
        ...
