"""The update of an agreement: the one struct every node signs and the contract verifies.

Paper 002, section 3: window ``t`` is recorded on-chain with ``f(w[t])``, ``H(w[t])``
and a commitment to the proofs ``P_t`` only when every intermediate node signed the
same :class:`Update`, EIP-712 :data:`UPDATE_TYPE` in the agreement's domain
(:func:`~pervasive.domain.terms.agreement_domain`):

- ``proofs_hash`` is :func:`proofs_hash` of the nodes' commitments
  ``H(f(w_i[t]) || S_{t,i} || ID_i)`` in node order (each proof ``p_{t,i}`` is
  ``(c_i, t, a, H(w[t]))``, so it binds ``P_t``);
- ``data_hash`` is ``keccak256`` of the packed window data under on-chain proof of
  storage, zero otherwise.

In the ring and leader protocols the nodes exchange their signatures once they agree;
in the fast protocol (Fig. 2B) the leader of ``t + 1`` collects them as the compact
``P_t``. Either way the result is a :class:`SignedUpdate`: the struct, one signature
per node in node order, and the window data it commits to. Its struct hash is the
record commitment the contract stores.

Example::

    update = Update.for_window(agreement, t, result, window_hash, proofs_hash=h)
    signed = SignedUpdate(update, tuple(update.sign(k, chain_id) for k in node_keys))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pervasive.crypto import (
    PrivateKey,
    Signature,
    TypedDataHash,
    abi_decode,
    abi_encode,
    checksum_address,
    keccak256,
    sign_typed_data,
    struct_hash,
    typed_data_digest,
)
from pervasive.domain.terms import agreement_domain
from pervasive.errors import InvalidInput

__all__ = ["UPDATE_TYPE", "SignedUpdate", "Update", "proofs_hash"]

UPDATE_TYPE = (
    "Update(address agreement,uint256 window,bytes result,bytes32 windowHash,"
    "bytes32 proofsHash,bytes32 dataHash)"
)
"""The EIP-712 type every node signs for an on-chain update of window ``t``."""
_ZERO = bytes(32)
_SIGNED_TYPES = ["address", "uint256", "bytes", "bytes32", "bytes32", "bytes", "bytes[]"]


def proofs_hash(commitments: Sequence[bytes]) -> bytes:
    """``keccak256(c_1 || ... || c_n)``: the agreed commitments, in the agreement's node order.

    Example: ``proofs_hash([p.proof.commitment for p in agreed.proofs])``.
    """
    for commitment in commitments:
        if len(commitment) != 32:
            raise InvalidInput("a commitment is 32 bytes")
    return keccak256(b"".join(commitments))


@dataclass(frozen=True)
class Update:
    """``(a, t, f(w[t]), H(w[t]), proofsHash, dataHash)``: what every node signs for window ``t``.

    The null result is the empty ``result``: the contract accepts its update and writes
    nothing (the paper records nothing for null); the nodes never send one.
    """

    agreement: str
    window: int
    result: bytes
    window_hash: bytes
    proofs_hash: bytes = _ZERO
    data_hash: bytes = _ZERO

    def __post_init__(self) -> None:
        object.__setattr__(self, "agreement", checksum_address(self.agreement))
        if len(self.window_hash) != 32 or len(self.proofs_hash) != 32 or len(self.data_hash) != 32:
            raise InvalidInput("window, proofs and data hashes are 32 bytes each")

    @classmethod
    def for_window(
        cls,
        agreement: str,
        t: int,
        result: bytes | None,
        window_hash: bytes,
        *,
        proofs_hash: bytes = _ZERO,
        data: bytes | None = None,
    ) -> Update:
        """The update of window ``t`` over window ``data`` (given only under on-chain QoS).

        ``None`` is the null result (an empty ``result``).

        Example: ``Update.for_window(agreement.address, 0, result, window_hash)``.
        """
        data_hash = keccak256(data) if data is not None else _ZERO
        return cls(agreement, t, result or b"", window_hash, proofs_hash, data_hash)

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct`` of the update: the record commitment stored on-chain."""
        values = [
            self.agreement, self.window, self.result, self.window_hash,
            self.proofs_hash, self.data_hash,
        ]  # fmt: skip
        return struct_hash(UPDATE_TYPE, values)

    def typed_hash(self, chain_id: int) -> TypedDataHash:
        """The digest every node signs (the agreement's domain on chain ``chain_id``)."""
        return typed_data_digest(agreement_domain(chain_id, self.agreement), self.struct_hash())

    def sign(self, key: PrivateKey, chain_id: int) -> Signature:
        """A node's signature. Example: ``update.sign(node_key, ledger.chain_id)``."""
        return sign_typed_data(key, self.typed_hash(chain_id))


@dataclass(frozen=True)
class SignedUpdate:
    """An :class:`Update` with every node's signature (node order) and its window data.

    ``data`` is the packed window data under on-chain proof of storage (``keccak256``
    of it is ``update.data_hash``), else empty. This is what the contract's ``update``
    (or ``update_with_data``) takes, and what a node keeps durably until it is recorded.
    """

    update: Update
    signatures: tuple[Signature, ...]
    data: bytes = b""

    def __post_init__(self) -> None:
        expected = keccak256(self.data) if self.data else _ZERO
        if expected != self.update.data_hash:
            raise InvalidInput(
                f"the window data of update {self.update.window} does not hash to its dataHash"
            )

    @property
    def t(self) -> int:
        """The window this update records."""
        return self.update.window

    def encode(self) -> bytes:
        """A self-contained byte form: ``abi_encode(address, uint256, bytes, bytes32, bytes32,
        bytes data, bytes[] signatures)``. Example: ``SignedUpdate.decode(s.encode()) == s``.
        """
        u = self.update
        return abi_encode(
            _SIGNED_TYPES,
            [
                u.agreement, u.window, u.result, u.window_hash, u.proofs_hash, self.data,
                [s.to_bytes() for s in self.signatures],
            ],
        )  # fmt: skip

    @classmethod
    def decode(cls, blob: bytes) -> SignedUpdate:
        """Inverse of :meth:`encode`; :class:`InvalidInput` if malformed."""
        agreement, t, result, window_hash, proofs, data, signatures = abi_decode(
            _SIGNED_TYPES, blob
        )
        data_hash = keccak256(data) if data else _ZERO
        update = Update(agreement, t, result, window_hash, proofs, data_hash)
        return cls(update, tuple(Signature.from_bytes(s) for s in signatures), data)
