"""An EVM chain as paper 003's data chain B_d (and as the user chain B_u for proofs).

Paper 003, section V-B: after C pays on B_u, P posts the data index, encrypted to C,
on B_d; section V-C: a notary decides a challenge by whether that posting (or C's pay
transaction) is in the canonical chain. :class:`EvmDataChain` implements the
:class:`~pervasive.crosschain.chains.DataChain` port on any EVM ledger: it posts through
the ``data_index.vy`` contract, finds a posting from the contract's ``IndexPosted``
logs (``eth_getLogs`` answers from the canonical chain only, so a posting that was
reorganised out is not found), and proves inclusion of any of the chain's transactions
with a Merkle-Patricia branch (:mod:`pervasive.crosschain.inclusion`). The same object
over B_u's ledger proves C's pay transaction; it then needs no data-index contract.

Example::

    chain = EvmDataChain(ledger_d, data_index)        # data_index: the contract wrapper
    tx_id = await chain.post_index(payment_id, consumer, ciphertext)
    posted = await chain.find_index(payment_id, provider=provider)
    proof = await chain.prove_inclusion(posted.tx_id)
    assert chain.verify_inclusion(proof) and await chain.is_canonical(proof)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Protocol

from pervasive.chain import Ledger, Log, Receipt
from pervasive.crosschain.chains import InclusionProof, PostedIndex
from pervasive.crosschain.inclusion import build_inclusion_proof, inclusion_defect
from pervasive.crypto import abi_decode, checksum_address, keccak256
from pervasive.errors import InvalidInput, NotFound

__all__ = ["INDEX_POSTED_TOPIC", "EvmDataChain", "IndexContract"]

INDEX_POSTED_TOPIC = keccak256(b"IndexPosted(bytes32,address,address,bytes)")
"""topic0 of ``data_index.vy``'s ``IndexPosted`` event."""


class IndexContract(Protocol):
    """What :class:`EvmDataChain` needs of the ``data_index.vy`` wrapper (``contracts/``)."""

    @property
    def address(self) -> str:
        """The deployed contract's address."""
        ...

    async def post(self, payment_id: bytes, consumer: str, ciphertext: bytes) -> Receipt:
        """Send ``post(payment_id, consumer, ciphertext)`` and wait for its receipt."""
        ...


class EvmDataChain:
    """One EVM ledger seen through the :class:`~pervasive.crosschain.chains.DataChain` port.

    ``data_index`` may be None for a chain that is only proven on (B_u). ``from_block``
    is where log searches start (the contract's deployment block). Refused proofs are
    counted in :attr:`refusals` by :class:`~pervasive.crosschain.inclusion.ProofDefect`.
    """

    def __init__(
        self, ledger: Ledger, data_index: IndexContract | None = None, *, from_block: int = 0
    ) -> None:
        self.ledger = ledger
        self.name = f"evm:{ledger.chain_id}"
        self._data_index = data_index
        self._from_block = from_block
        self.refusals: Counter[str] = Counter()
        """Refused inclusion proofs by defect (and ``other_chain``): for ``/metrics``."""

    # -- the data index ---------------------------------------------------------------
    async def post_index(self, payment_id: bytes, consumer: str, ciphertext: bytes) -> str:
        """Post the encrypted data index of ``payment_id``; the mined transaction's hash.

        The contract wrapper checks the inputs (``InvalidInput``) before signing.

        Example: ``tx_id = await chain.post_index(payment_id, consumer, ciphertext)``.
        """
        receipt = await self._contract().post(payment_id, consumer, ciphertext)
        return receipt.transaction_hash

    async def find_index(
        self, payment_id: bytes, *, provider: str | None = None
    ) -> PostedIndex | None:
        """The index posted for ``payment_id`` in the canonical chain, or None.

        The contract takes one posting per (payment, sender), so anyone may post for
        someone else's payment: give ``provider`` (the payee of the ``Paid`` event) to
        count only P's own posting. Without it the earliest posting is returned.

        Example: ``await chain.find_index(payment_id, provider=p.address)``.
        """
        contract = self._contract()
        _check_payment_id(payment_id)
        topics: list[bytes | None] = [INDEX_POSTED_TOPIC, payment_id]
        if provider is not None:
            topics.append(_address_topic(provider))
        head = await self.ledger.block_number()
        logs = await self.ledger.logs(contract.address, self._from_block, head, topics)
        if not logs:
            return None
        return await self._posted(logs[0])

    async def _posted(self, log: Log) -> PostedIndex | None:
        header = await self.ledger.rpc.block_header(log.block_number)
        if header is None or header.hash != log.block_hash:
            return None  # reorganised between the log query and this read
        (ciphertext,) = abi_decode(["bytes"], log.data)
        return PostedIndex(
            chain=self.name,
            payment_id=log.topics[1],
            tx_id=log.transaction_hash,
            block_number=log.block_number,
            block_hash=log.block_hash,
            block_time=header.timestamp,
            provider=_topic_address(log.topics[2]),
            consumer=_topic_address(log.topics[3]),
            ciphertext_digest=hashlib.sha256(ciphertext).digest(),
            ciphertext=bytes(ciphertext),
        )

    # -- inclusion ----------------------------------------------------------------------
    async def prove_inclusion(self, tx_id: str) -> InclusionProof | None:
        """A Merkle-Patricia proof that ``tx_id`` is in a canonical block, or None.

        None while the transaction is pending, unknown, or in a block that is no longer
        canonical. Example: ``proof = await chain.prove_inclusion(receipt.transaction_hash)``.
        """
        receipt = await self.ledger.receipt(_check_hash(tx_id))
        if receipt is None:
            return None
        header = await self.ledger.rpc.block_header(receipt.block_number)
        if header is None or header.hash != receipt.block_hash:
            return None
        hashes = [tx.lower() for tx in header.transaction_hashes]
        if tx_id.lower() not in hashes:
            return None
        raws = await self.ledger.rpc.raw_transactions(hashes)
        if any(raw is None for raw in raws):
            return None  # a transaction left the chain while we read the block
        complete = [raw for raw in raws if raw is not None]
        return build_inclusion_proof(
            self.name, header.encoded, complete, hashes.index(tx_id.lower())
        )

    def verify_inclusion(self, proof: InclusionProof) -> bool:
        """Whether ``proof`` holds against its own header; a refusal is counted.

        Example: ``chain.verify_inclusion(proof)`` (then :meth:`is_canonical` asks the node).
        """
        if proof.chain != self.name:
            self.refusals["other_chain"] += 1
            return False
        defect = inclusion_defect(proof, chain_id=self.ledger.chain_id)
        if defect is not None:
            self.refusals[defect.value] += 1
            return False
        return True

    async def is_canonical(self, proof: InclusionProof, *, confirmations: int = 0) -> bool:
        """Whether the proof's block is in this node's canonical chain, ``confirmations`` deep.

        Example: ``await chain.is_canonical(proof, confirmations=2)``.
        """
        header = await self.ledger.rpc.block_header(proof.block_number)
        if header is None or header.hash != proof.block_hash.lower():
            return False
        return await self.ledger.block_number() >= proof.block_number + confirmations

    async def now(self) -> int:
        """The latest block's timestamp (unix seconds)."""
        header = await self.ledger.rpc.block_header("latest")
        if header is None:
            raise NotFound(f"the {self.name} chain has no latest block")
        return header.timestamp

    def _contract(self) -> IndexContract:
        if self._data_index is None:
            raise NotFound(
                f"no data index contract on {self.name}: build EvmDataChain(ledger, "
                "data_index) to post or find indexes on it"
            )
        return self._data_index


def _check_payment_id(payment_id: bytes) -> None:
    if not isinstance(payment_id, bytes) or len(payment_id) != 32 or not any(payment_id):
        raise InvalidInput("a payment id is 32 bytes, not zero: take it from the Paid event")


def _check_hash(tx_id: str) -> str:
    text = tx_id if isinstance(tx_id, str) else ""
    try:
        if len(text) == 66 and text.startswith("0x"):
            bytes.fromhex(text[2:])
            return text
    except ValueError:
        pass
    raise InvalidInput(f"{tx_id!r} is no transaction hash: give 0x and 64 hex digits")


def _address_topic(address: str) -> bytes:
    try:
        raw = bytes.fromhex(address.removeprefix("0x"))
    except ValueError as exc:
        raise InvalidInput(f"{address!r} is no address: give 0x and 40 hex digits") from exc
    if len(raw) != 20:
        raise InvalidInput(f"{address!r} is no address: give 0x and 40 hex digits")
    return raw.rjust(32, b"\0")


def _topic_address(topic: bytes) -> str:
    return checksum_address("0x" + topic[12:].hex())
