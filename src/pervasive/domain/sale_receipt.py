"""The barcode receipt of a sale (paper 004, section 4.4), signed by its buyer.

After ``buy()`` the buyer gets a barcode holding the sale order's address and the
buyer's address; the warehouse device scans it at the door (section 4.7). We add the
buyer's EIP-712 signature over ``Receipt(address order,address buyer)`` in the domain
``{name: "pervasive sale receipt", version: "1", chainId}``, so a receipt cannot name a
buyer who did not make it: whoever shows it holds the buyer's key or a copy the buyer
made. What the chain must still say (the order was bought by that buyer and not released
yet) the door asks with ``verifyOwnership``; the release is once per sale on-chain, so a
copied receipt opens no door twice.

The barcode text uses only the QR alphanumeric set (digits, capitals, ``:``)::

    PVR1:<chain id>:<ORDER 40 HEX>:<BUYER 40 HEX>:<SIGNATURE 130 HEX>

:meth:`SaleReceipt.typed_data` is the JSON document a browser wallet signs with
``eth_signTypedData_v4``; :meth:`SaleReceipt.from_signature` takes what it returns.

Example::

    receipt = SaleReceipt.sign(buyer_key, 31337, order.address, buyer_key.address)
    text = receipt.encode()              # 'PVR1:31337:DF2F...:6813...:9A3C...'
    scanned = SaleReceipt.decode(text)
    scanned.verify()                     # None, or InvalidReceipt with the reason
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pervasive.crypto import (
    PrivateKey,
    Signature,
    TypedDataHash,
    checksum_address,
    domain_separator,
    recover_hash,
    sign_typed_data,
    struct_hash,
    typed_data_digest,
)
from pervasive.errors import InvalidInput

__all__ = [
    "RECEIPT_DOMAIN_NAME",
    "RECEIPT_DOMAIN_VERSION",
    "RECEIPT_PREFIX",
    "RECEIPT_TYPE",
    "InvalidReceipt",
    "SaleReceipt",
]

RECEIPT_PREFIX = "PVR1"
"""The barcode's first field: "PVR" (pervasive receipt) and the format version 1."""
RECEIPT_TYPE = "Receipt(address order,address buyer)"
"""The EIP-712 type the buyer signs."""
RECEIPT_DOMAIN_NAME = "pervasive sale receipt"
RECEIPT_DOMAIN_VERSION = "1"
"""The EIP-712 domain of a receipt (with the chain id; no verifying contract)."""
_HEX40 = re.compile(r"[0-9A-F]{40}")
_HEX130 = re.compile(r"[0-9A-F]{130}")
_CHAIN_ID = re.compile(r"[1-9][0-9]{0,77}")


class InvalidReceipt(InvalidInput):
    """A scanned or given sale receipt is malformed or not signed by its buyer.

    The message is the reason shown at the door; ``kind`` is a short stable key for
    counting refusals (``"format"``, ``"chain id"``, ``"address"``, ``"signature"``,
    ``"wrong chain"``, ``"not the buyer"``).
    """

    def __init__(self, message: str, *, kind: str = "format") -> None:
        super().__init__(message)
        self.kind = kind


def _address(value: str, what: str) -> str:
    try:
        return checksum_address(value)
    except InvalidInput as exc:
        raise InvalidReceipt(
            f"the receipt's {what} is not an address: {exc}", kind="address"
        ) from None


def _signature_bytes(signature: bytes | str) -> bytes:
    if isinstance(signature, str):
        try:
            raw = bytes.fromhex(signature.strip().removeprefix("0x").removeprefix("0X"))
        except ValueError:
            raise InvalidReceipt(
                "the receipt's signature is not hexadecimal", kind="signature"
            ) from None
    elif isinstance(signature, bytes | bytearray):
        raw = bytes(signature)
    else:
        raise InvalidReceipt("the receipt's signature must be bytes or hex", kind="signature")
    try:
        return Signature.from_bytes(raw).to_bytes()
    except InvalidInput as exc:
        raise InvalidReceipt(
            f"the receipt's signature is malformed: {exc}", kind="signature"
        ) from None


def _check_chain_id(chain_id: int) -> int:
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or not 0 < chain_id < 2**256:
        raise InvalidReceipt(f"a chain id is a positive integer, got {chain_id!r}", kind="chain id")
    return chain_id


@dataclass(frozen=True)
class SaleReceipt:
    """The buyer's signed receipt of sale order ``order`` on chain ``chain_id``."""

    chain_id: int
    order: str
    """The sale order's address (checksummed)."""
    buyer: str
    """The buyer's address (checksummed): who must have signed."""
    signature: bytes
    """65 bytes ``r || s || v`` (v = 27 or 28) over :meth:`digest`."""

    @staticmethod
    def digest(chain_id: int, order: str, buyer: str) -> TypedDataHash:
        """The EIP-712 hashes the buyer signs (equal to ``hash_typed_data(typed_data(...))``).

        Example: ``SaleReceipt.digest(31337, order, buyer).digest.hex()``.
        """
        domain = domain_separator(RECEIPT_DOMAIN_NAME, RECEIPT_DOMAIN_VERSION, chain_id)
        return typed_data_digest(domain, struct_hash(RECEIPT_TYPE, [order, buyer]))

    @classmethod
    def sign(cls, key: PrivateKey, chain_id: int, order: str, buyer: str) -> SaleReceipt:
        """The receipt of ``order`` signed by ``key`` (which must be ``buyer``'s key).

        Example: ``SaleReceipt.sign(buyer_key, ledger.chain_id, order.address, buyer)``.
        """
        chain_id = _check_chain_id(chain_id)
        order, buyer = _address(order, "order"), _address(buyer, "buyer")
        if key.address != buyer:
            raise InvalidReceipt(
                f"only the buyer {buyer} can sign this receipt, not {key.address}",
                kind="not the buyer",
            )
        signature = sign_typed_data(key, cls.digest(chain_id, order, buyer))
        return cls(chain_id, order, buyer, signature.to_bytes())

    @staticmethod
    def typed_data(chain_id: int, order: str, buyer: str) -> dict[str, Any]:
        """The EIP-712 document a wallet signs with ``eth_signTypedData_v4``.

        Example: ``await ethereum.request({method: "eth_signTypedData_v4",
        params: [buyer, JSON.stringify(SaleReceipt.typed_data(1, order, buyer))]})``.
        """
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                ],
                "Receipt": [
                    {"name": "order", "type": "address"},
                    {"name": "buyer", "type": "address"},
                ],
            },
            "primaryType": "Receipt",
            "domain": {
                "name": RECEIPT_DOMAIN_NAME,
                "version": RECEIPT_DOMAIN_VERSION,
                "chainId": _check_chain_id(chain_id),
            },
            "message": {"order": _address(order, "order"), "buyer": _address(buyer, "buyer")},
        }

    @classmethod
    def from_signature(
        cls, chain_id: int, order: str, buyer: str, signature: bytes | str
    ) -> SaleReceipt:
        """A receipt from a signature made elsewhere (a browser wallet), checked for shape only.

        ``signature`` is 65 bytes or their hex (``0x`` optional); v may be 0/1 or 27/28.
        Call :meth:`verify` to check who signed. Example:
        ``SaleReceipt.from_signature(1, order, buyer, "0x" + "ab" * 65).verify()``.
        """
        return cls(
            _check_chain_id(chain_id),
            _address(order, "order"),
            _address(buyer, "buyer"),
            _signature_bytes(signature),
        )

    def verify(self, *, chain_id: int | None = None) -> None:
        """Check the buyer signed this receipt (and, when given, that it is for ``chain_id``).

        Raises :class:`InvalidReceipt` with a reason a person at the door can read.

        Example: ``SaleReceipt.decode(scanned).verify(chain_id=ledger.chain_id)``.
        """
        if chain_id is not None and chain_id != self.chain_id:
            raise InvalidReceipt(
                f"this receipt is for chain {self.chain_id}, but this warehouse serves chain "
                f"{chain_id}: show the receipt of this shop's sale",
                kind="wrong chain",
            )
        digest = self.digest(self.chain_id, self.order, self.buyer).digest
        try:
            signer = recover_hash(digest, self.signature)
        except InvalidInput:
            signer = None
        if signer != self.buyer:
            raise InvalidReceipt(
                "the receipt was not signed by its buyer (altered or copied wrong): "
                "ask the buyer to show the receipt from their wallet again",
                kind="not the buyer",
            )

    def encode(self) -> str:
        """The barcode text ``PVR1:<chain id>:<ORDER>:<BUYER>:<SIGNATURE>`` (capital hex).

        Example: ``SaleReceipt.decode(receipt.encode()) == receipt``.
        """
        return ":".join(
            (
                RECEIPT_PREFIX,
                str(self.chain_id),
                self.order[2:].upper(),
                self.buyer[2:].upper(),
                self.signature.hex().upper(),
            )
        )

    @classmethod
    def decode(cls, text: str) -> SaleReceipt:
        """Parse scanned barcode text; :class:`InvalidReceipt` says what is wrong with it.

        Only parses: call :meth:`verify` for the signature. Example:
        ``SaleReceipt.decode("PVR1:31337:DF2F...:6813...:9A3C...")``.
        """
        if not isinstance(text, str):
            raise InvalidReceipt("a receipt is text read from its barcode")
        fields = text.strip().split(":")
        if fields[0] != RECEIPT_PREFIX:
            if fields[0].startswith("PVR"):
                raise InvalidReceipt(
                    f"receipt format {fields[0][3:]!r} is not supported: this door reads "
                    f"{RECEIPT_PREFIX} receipts"
                )
            raise InvalidReceipt(
                f"this barcode is not a sale receipt (it should start with {RECEIPT_PREFIX}:)"
            )
        if len(fields) != 5:
            raise InvalidReceipt(
                f"a receipt has 5 fields separated by ':', this one has {len(fields)}"
            )
        _, chain_text, order_text, buyer_text, signature_text = fields
        if not _CHAIN_ID.fullmatch(chain_text) or int(chain_text) >= 2**256:
            raise InvalidReceipt(
                f"the receipt's chain id {chain_text!r} is not a number (digits, no leading 0)",
                kind="chain id",
            )
        for what, value in (("order", order_text), ("buyer", buyer_text)):
            if not _HEX40.fullmatch(value):
                raise InvalidReceipt(
                    f"the receipt's {what} address must be 40 hex digits (0-9, A-F), "
                    f"got {len(value)} characters {value[:12]!r}...",
                    kind="address",
                )
        if not _HEX130.fullmatch(signature_text):
            raise InvalidReceipt(
                "the receipt's signature must be 130 hex digits (0-9, A-F), "
                f"got {len(signature_text)} characters",
                kind="signature",
            )
        signature = bytes.fromhex(signature_text)
        if signature[64] not in (27, 28):
            raise InvalidReceipt(
                f"the receipt's signature ends in v={signature[64]}, not 27 or 28", kind="signature"
            )
        return cls(
            int(chain_text),
            checksum_address("0x" + order_text),
            checksum_address("0x" + buyer_text),
            _signature_bytes(signature),
        )
