"""Reading a signed EVM transaction someone hands us: who signed it, to whom, what it does.

Paper 003's challenge carries the challenged party's raw transaction (``rawTx_{1-b}``):
the provider P presents the consumer's signed ``pay`` transaction to prove what the
consumer committed to. The notary must read it without trusting the presenter: the
sender is recovered from the signature, never taken from the request.

Example::

    tx = decode_raw_transaction(raw)
    tx.sender, tx.to, tx.value, tx.data[:4]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_hash.auto import keccak
from hexbytes import HexBytes

from pervasive.crypto import checksum_address
from pervasive.errors import InvalidInput

__all__ = ["DecodedTransaction", "decode_raw_transaction"]


@dataclass(frozen=True)
class DecodedTransaction:
    """The fields of a signed transaction that a verifier acts on."""

    hash: str
    """``0x`` + keccak256 of the raw bytes: the id the chain knows it by."""
    sender: str
    """Recovered from the signature."""
    to: str | None
    nonce: int
    value: int
    data: bytes
    chain_id: int | None


def decode_raw_transaction(raw: bytes) -> DecodedTransaction:
    """Decode and recover a signed transaction (legacy or typed: 2930, 1559, ...).

    Raises :class:`InvalidInput` when the bytes are no signed transaction.
    """
    try:
        sender = Account.recover_transaction(raw)
        to, nonce, value, data, chain_id = (
            _typed_fields(raw) if raw[0] < 0x7F else _legacy_fields(raw)
        )
    except Exception as exc:  # eth-account raises a zoo of types for bad bytes
        raise InvalidInput(
            f"not a signed EVM transaction ({exc}); send the raw bytes as the node returns them"
        ) from exc
    return DecodedTransaction(
        hash="0x" + keccak(raw).hex(),
        sender=checksum_address(sender),
        to=checksum_address(to) if to else None,
        nonce=nonce,
        value=value,
        data=data,
        chain_id=chain_id,
    )


_Fields = tuple[bytes | str | None, int, int, bytes, int | None]


def _typed_fields(raw: bytes) -> _Fields:
    fields: dict[str, Any] = dict(TypedTransaction.from_bytes(HexBytes(raw)).as_dict())
    return (
        fields.get("to") or None,
        int(fields["nonce"]),
        int(fields["value"]),
        bytes(fields.get("data") or b""),
        int(fields["chainId"]),
    )


def _legacy_fields(raw: bytes) -> _Fields:
    """A pre-EIP-2718 transaction: a bare RLP list; EIP-155 puts the chain id in ``v``."""
    nonce, _, _, to, value, data, v, _, _ = rlp.decode(raw)
    v_int = int.from_bytes(v, "big")
    return (
        to or None,
        int.from_bytes(nonce, "big"),
        int.from_bytes(value, "big"),
        bytes(data),
        (v_int - 35) // 2 if v_int >= 35 else None,
    )
