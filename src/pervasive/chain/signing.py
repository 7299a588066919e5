"""Fast local signing of EIP-1559 transactions.

eth-account's ``sign_transaction`` validates and normalises a dict on every call and
costs about a millisecond; submitting thousands of contract calls a second needs
~20x less. This module builds the EIP-1559 payload with ``rlp`` and signs its hash
with coincurve directly. ``tests/unit/chain/test_signing.py`` checks, by property
test, that every byte equals eth-account's output for the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp
from coincurve import PrivateKey
from eth_hash.auto import keccak

__all__ = ["SignedTransaction", "UnsignedTransaction", "sign_transaction"]

_EIP1559 = b"\x02"


@dataclass(frozen=True)
class UnsignedTransaction:
    """The fields of an EIP-1559 (type 2) transaction. ``to=None`` deploys a contract."""

    chain_id: int
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas: int
    to: bytes | None
    value: int
    data: bytes

    def payload(self) -> list[object]:
        """The RLP list of the unsigned fields, in EIP-1559 order."""
        return [
            self.chain_id,
            self.nonce,
            self.max_priority_fee_per_gas,
            self.max_fee_per_gas,
            self.gas,
            self.to or b"",
            self.value,
            self.data,
            [],  # access list
        ]


@dataclass(frozen=True)
class SignedTransaction:
    """A signed transaction ready for ``eth_sendRawTransaction``."""

    raw: bytes
    hash: bytes
    nonce: int


def sign_transaction(tx: UnsignedTransaction, key: PrivateKey) -> SignedTransaction:
    """Sign ``tx`` with ``key`` (a ``coincurve.PrivateKey``) and encode it for the wire.

    Example: ``sign_transaction(tx, PrivateKey(secret)).raw.hex()``.
    """
    fields = tx.payload()
    digest = keccak(_EIP1559 + rlp.encode(fields))
    signature = key.sign_recoverable(digest, hasher=None)
    r = int.from_bytes(signature[0:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    y_parity = signature[64]
    raw = _EIP1559 + rlp.encode([*fields, y_parity, r, s])
    return SignedTransaction(raw=raw, hash=keccak(raw), nonce=tx.nonce)
