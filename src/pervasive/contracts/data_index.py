"""The wrapper of ``vyper/data_index.vy``: where P posts the data index on B_d (paper 003, V-B).

After C's payment on the user chain, the provider posts the data index, encrypted to the
consumer, on the data chain: the second step of the swap. The contract takes one post
per (payment id, provider) and logs ``IndexPosted``, which the notaries look for when C
claims the index was never delivered.

Example::

    index = await DataIndex.open(ledger, provider_signer)
    receipt = await index.post(payment_id, consumer.address, ciphertext)
    (posted,) = index.postings(receipt)
    await index.posted_block(payment_id, provider_signer.address)   # receipt.block_number
"""

from __future__ import annotations

from dataclasses import dataclass

from pervasive.chain import Receipt
from pervasive.contracts.handle import ContractHandle
from pervasive.domain import check_account
from pervasive.errors import InvalidInput

__all__ = ["DATA_INDEX", "MAX_CIPHERTEXT", "DataIndex", "IndexPosting"]

DATA_INDEX = "data_index"
"""The contract's name: its source is ``vyper/data_index.vy``, its deployment record key."""

MAX_CIPHERTEXT = 1024
"""The largest ciphertext the contract takes (``Bytes[1024]``)."""


@dataclass(frozen=True)
class IndexPosting:
    """An ``IndexPosted`` event."""

    payment_id: bytes
    provider: str
    consumer: str
    ciphertext: bytes
    block_number: int
    transaction_hash: str


class DataIndex(ContractHandle):
    """A deployed data-index contract; posts are sent from ``signer``."""

    NAME = DATA_INDEX

    async def post(self, payment_id: bytes, consumer: str, ciphertext: bytes) -> Receipt:
        """Post ``ciphertext`` (the index encrypted to ``consumer``) for ``payment_id``.

        The contract reverts "already posted for this payment" on a second post by the
        same provider. Example: ``await index.post(pid, consumer, ciphertext)``.
        """
        if self.signer is None:
            raise InvalidInput("this handle has no signer: use with_signer(...) first")
        _check_payment_id(payment_id)
        if not 0 < len(ciphertext) <= MAX_CIPHERTEXT:
            raise InvalidInput(
                f"the ciphertext must be 1 to {MAX_CIPHERTEXT} bytes, got {len(ciphertext)}"
            )
        consumer = check_account(consumer, what="consumer")
        return await self.contract.transact(self.signer, "post", payment_id, consumer, ciphertext)

    async def posted_block(self, payment_id: bytes, provider: str) -> int:
        """The block in which ``provider`` posted for ``payment_id``; 0 when it has not."""
        _check_payment_id(payment_id)
        return int(await self.contract.call("posted_block", payment_id, check_account(provider)))

    def postings(self, receipt: Receipt) -> list[IndexPosting]:
        """The ``IndexPosted`` events of this contract in ``receipt``."""
        return [
            IndexPosting(
                payment_id=bytes(e.args["payment_id"]),
                provider=e.args["provider"],
                consumer=e.args["consumer"],
                ciphertext=bytes(e.args["ciphertext"]),
                block_number=receipt.block_number,
                transaction_hash=receipt.transaction_hash,
            )
            for e in self.contract.events(receipt, "IndexPosted")
        ]


def _check_payment_id(payment_id: bytes) -> None:
    if not isinstance(payment_id, bytes) or len(payment_id) != 32 or not any(payment_id):
        raise InvalidInput("a payment id is 32 non-zero bytes (from the Paid event)")
