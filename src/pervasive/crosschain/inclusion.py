"""Merkle-Patricia inclusion proofs of EVM transactions, built and checked without a node.

Paper 003, section V: a challenge is decided by whether a transaction is in a chain,
P's data-index posting on B_d (``undelivered``) or C's pay transaction on B_u
(``unpaid``). On an EVM chain a block header commits to its transactions through
``transactionsRoot``, the root of the hexary Merkle-Patricia trie that maps
``rlp(index)`` to the raw signed transaction (Yellow Paper, section 4.3, with EIP-2718
typed transactions stored as ``type || payload``). A proof is the header's RLP, the raw
transaction and the trie nodes on the path to its key; it holds when

1. ``keccak(header) == block_hash`` and the header's number is the block number,
2. ``keccak(transaction) == tx_id`` and the transaction was signed for this chain id,
3. the branch leads from the header's ``transactionsRoot`` to ``rlp(index)`` and the
   value there is the transaction (``HexaryTrie.get_from_proof`` answers ``b""`` for an
   absent key, so the value is compared, never just looked up).

Whether the block is canonical is the holder's question to its node, not the proof's.

Example::

    proof = build_inclusion_proof("evm:31337", header_rlp, raw_transactions, index=2)
    assert inclusion_defect(proof, chain_id=31337) is None
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

import rlp
from rlp.exceptions import DecodingError
from trie.exceptions import BadTrieProof, InvalidNode, ValidationError
from trie.hexary import HexaryTrie

from pervasive.crosschain.chains import InclusionProof
from pervasive.crosschain.errors import InclusionProofInvalid
from pervasive.crypto import keccak256

__all__ = [
    "ProofDefect",
    "build_inclusion_proof",
    "inclusion_defect",
    "require_inclusion",
    "transaction_chain_id",
    "transactions_root",
    "trie_root",
]

_TRANSACTIONS_ROOT = 4  # position in the header's RLP list (Yellow Paper 4.3)
_NUMBER = 8
_HEADER_MIN_FIELDS = 15  # the pre-London header; later forks only append
_TYPED_TRANSACTIONS = frozenset({1, 2, 3, 4})  # EIP-2930, 1559, 4844, 7702: chain id first


class ProofDefect(StrEnum):
    """Why an inclusion proof is refused; the value names the counter it is counted under."""

    MALFORMED = "malformed"
    HEADER = "header"
    BLOCK_HASH = "block_hash"
    BLOCK_NUMBER = "block_number"
    TRANSACTION_HASH = "transaction_hash"
    CHAIN = "chain"
    BRANCH = "branch"
    TRANSACTION_MISMATCH = "transaction_mismatch"

    @property
    def message(self) -> str:
        """One line for the user: what is wrong and what to do."""
        return _MESSAGES[self]


_MESSAGES = {
    ProofDefect.MALFORMED: "the proof's fields have the wrong types or sizes; rebuild it",
    ProofDefect.HEADER: "the proof's header is not an RLP block header; fetch the block again",
    ProofDefect.BLOCK_HASH: "the header does not hash to the proof's block hash: a forged header",
    ProofDefect.BLOCK_NUMBER: "the header is of another block number than the proof claims",
    ProofDefect.TRANSACTION_HASH: "the raw transaction does not hash to the proof's tx id",
    ProofDefect.CHAIN: "the transaction was signed for another chain id; prove it on its chain",
    ProofDefect.BRANCH: "the branch does not lead from the header's transactionsRoot to the "
    "transaction's index: the transaction is not in this block",
    ProofDefect.TRANSACTION_MISMATCH: "the trie holds another transaction at that index: "
    "the transaction is not in this block at the claimed position",
}


def _trie(items: Iterable[tuple[bytes, bytes | None]]) -> HexaryTrie:
    trie = HexaryTrie(db={})
    for key, value in items:
        if value is None or value == b"":  # the trie stores no empty values: both delete
            trie.delete(key)  # type: ignore[no-untyped-call]  # trie ships no annotations here
        else:
            trie[key] = value
    return trie


def _transactions_trie(raw_transactions: Sequence[bytes]) -> HexaryTrie:
    return _trie((rlp.encode(index), raw) for index, raw in enumerate(raw_transactions))


def trie_root(items: Iterable[tuple[bytes, bytes | None]]) -> bytes:
    """The root of the hexary Merkle-Patricia trie after these writes, in order.

    A value of None (or empty) deletes its key. This is the construction every proof
    here uses; the ethereum/tests trie vectors check it.

    Example: ``trie_root([(b"do", b"verb"), (b"dog", b"puppy")])``.
    """
    return bytes(_trie(items).root_hash)


def transactions_root(raw_transactions: Sequence[bytes]) -> bytes:
    """The ``transactionsRoot`` of a block with these raw transactions, in block order.

    Example: ``transactions_root([]).hex() == "56e81f17...b421"`` (the empty trie).
    """
    return bytes(_transactions_trie(raw_transactions).root_hash)


def transaction_chain_id(raw: bytes) -> int | None:
    """The EIP-155 chain id a raw transaction was signed for; None for a pre-155 one.

    Example: ``transaction_chain_id(raw_eip1559_tx) == 31337``. Raises
    :class:`InclusionProofInvalid` if ``raw`` is no transaction encoding.
    """
    try:
        if raw and raw[0] in _TYPED_TRANSACTIONS:
            fields = rlp.decode(raw[1:])
            return int.from_bytes(fields[0], "big")
        fields = rlp.decode(raw)
        v = int.from_bytes(fields[6], "big")
    except (DecodingError, IndexError, TypeError) as exc:
        raise InclusionProofInvalid("the raw transaction is no EVM transaction encoding") from exc
    return (v - 35) // 2 if v >= 35 else None


def build_inclusion_proof(
    chain: str, header: bytes, raw_transactions: Sequence[bytes], index: int
) -> InclusionProof:
    """The proof that ``raw_transactions[index]`` is in the block whose RLP header is given.

    ``raw_transactions`` is the whole block's list, in block order: the trie is rebuilt
    and checked against the header's ``transactionsRoot`` first, so a node that handed
    over a wrong list is caught here rather than by the verifier.

    Example: ``build_inclusion_proof("evm:1", header, raws, 0).branch`` (2-3 nodes).
    """
    if not 0 <= index < len(raw_transactions):
        raise InclusionProofInvalid(
            f"index {index} is outside the block's {len(raw_transactions)} transactions"
        )
    fields = _header_fields(header)
    if fields is None:
        raise InclusionProofInvalid(ProofDefect.HEADER.message)
    trie = _transactions_trie(raw_transactions)
    if trie.root_hash != fields[_TRANSACTIONS_ROOT]:
        raise InclusionProofInvalid(
            "the transactions given do not rebuild the header's transactionsRoot; "
            "the node answered inconsistently, fetch the block again"
        )
    key = rlp.encode(index)
    raw = raw_transactions[index]
    return InclusionProof(
        chain=chain,
        tx_id="0x" + keccak256(raw).hex(),
        block_number=int.from_bytes(fields[_NUMBER], "big"),
        block_hash="0x" + keccak256(header).hex(),
        header=header,
        index=index,
        transaction=raw,
        branch=tuple(rlp.encode(node) for node in _branch(trie, key)),
    )


def inclusion_defect(proof: InclusionProof, *, chain_id: int) -> ProofDefect | None:
    """What is wrong with ``proof`` for a chain with EIP-155 id ``chain_id``; None if it holds.

    Example: ``inclusion_defect(proof, chain_id=31337) is None``.
    """
    if not _well_formed(proof):
        return ProofDefect.MALFORMED
    fields = _header_fields(proof.header)
    if fields is None:
        return ProofDefect.HEADER
    if "0x" + keccak256(proof.header).hex() != proof.block_hash.lower():
        return ProofDefect.BLOCK_HASH
    if int.from_bytes(fields[_NUMBER], "big") != proof.block_number:
        return ProofDefect.BLOCK_NUMBER
    if "0x" + keccak256(proof.transaction).hex() != proof.tx_id.lower():
        return ProofDefect.TRANSACTION_HASH
    try:
        signed_for = transaction_chain_id(proof.transaction)
    except InclusionProofInvalid:
        return ProofDefect.CHAIN
    if signed_for is not None and signed_for != chain_id:
        return ProofDefect.CHAIN
    try:
        nodes = [rlp.decode(node) for node in proof.branch]
        found = HexaryTrie.get_from_proof(  # type: ignore[no-untyped-call]
            fields[_TRANSACTIONS_ROOT], rlp.encode(proof.index), nodes
        )
    except (BadTrieProof, InvalidNode, ValidationError, DecodingError, IndexError, TypeError):
        return ProofDefect.BRANCH
    if found != proof.transaction:
        return ProofDefect.BRANCH if found == b"" else ProofDefect.TRANSACTION_MISMATCH
    return None


def require_inclusion(proof: InclusionProof, *, chain_id: int) -> None:
    """Raise :class:`InclusionProofInvalid` (one line, the defect's message) unless it holds.

    Example: ``require_inclusion(proof, chain_id=ledger.chain_id)``.
    """
    defect = inclusion_defect(proof, chain_id=chain_id)
    if defect is not None:
        raise InclusionProofInvalid(f"{defect.value}: {defect.message}")


def _branch(trie: HexaryTrie, key: bytes) -> tuple[object, ...]:
    return tuple(trie.get_proof(key))  # type: ignore[no-untyped-call]  # trie lacks annotations


def _well_formed(proof: InclusionProof) -> bool:
    return (
        isinstance(proof.header, bytes)
        and isinstance(proof.transaction, bytes)
        and len(proof.transaction) > 0
        and isinstance(proof.index, int)
        and proof.index >= 0
        and isinstance(proof.block_number, int)
        and _is_hash(proof.block_hash)
        and _is_hash(proof.tx_id)
        and isinstance(proof.branch, tuple)
        and all(isinstance(node, bytes) for node in proof.branch)
    )


def _is_hash(text: object) -> bool:
    if not isinstance(text, str) or len(text) != 66 or not text.startswith("0x"):
        return False
    try:
        bytes.fromhex(text[2:])
    except ValueError:
        return False
    return True


def _header_fields(header: bytes) -> list[bytes] | None:
    """The header's fields, or None unless it is a flat RLP list of a header's shape."""
    try:
        fields = rlp.decode(header)
    except DecodingError:
        return None
    if not isinstance(fields, list) or len(fields) < _HEADER_MIN_FIELDS:
        return None
    if not all(isinstance(field, bytes) for field in fields):
        return None
    if len(fields[_TRANSACTIONS_ROOT]) != 32:
        return None
    return fields
