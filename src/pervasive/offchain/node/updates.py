"""From an agreed window to the update the Agreement contract verifies, sans I/O.

The contract (``contracts/vyper/agreement.vy``) records window ``t`` when it receives
``(t, f(w[t]), H(w[t]), proofsHash[, data])`` with one EIP-712 signature per node over

    Update(address agreement,uint256 window,bytes result,bytes32 windowHash,
           bytes32 proofsHash,bytes32 dataHash)

in node order (:class:`pervasive.contracts.UpdatePayload`). The protocol's
:class:`~pervasive.offchain.outcomes.Agreed` gives every node the same result, window
hash and fully signed proofs ``P_t``; from them each node builds the same payload:

- ``proofsHash = keccak256(c_1 || ... || c_n)``, the nodes' commitments
  ``H(f(w_i[t]) || S_{t,i} || ID_i)`` in node order (each proof ``p_{t,i}`` is
  ``(c_i, t, a, H(w[t]))``, so this binds ``P_t``);
- ``dataHash = keccak256(data)`` under on-chain proof of storage, where ``data`` is the
  packed :class:`~pervasive.offchain.window_data.WindowData` of ``w[t]``; zero otherwise.

Each node signs it and sends the signature to every other node (``UPDATE_SIGNATURE``
on the node topics). The signature authenticates itself: a receiver recomputes the
payload from its own agreed state and accepts the signature only if it recovers to
the sender, so a forged or misdirected one is rejected, and a replay is harmless.
With all ``n`` signatures any node holds the complete update, which is what lets a
stand-in take over from a silent submitter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pervasive.contracts import UpdatePayload
from pervasive.crypto import (
    PrivateKey,
    Signature,
    abi_decode,
    abi_encode,
    checksum_address,
    keccak256,
    recover_hash,
)
from pervasive.errors import InvalidInput, InvalidSignature
from pervasive.offchain.agreement import AgreementSpec, QoS
from pervasive.offchain.node.submitter import OnchainUpdate
from pervasive.offchain.outcomes import Agreed
from pervasive.offchain.window import WindowArray
from pervasive.offchain.window_data import WindowData

__all__ = ["UpdateAssembler", "pack_window", "proofs_hash"]

_SIGNATURE_MESSAGE = ["uint256", "address", "bytes"]


def proofs_hash(agreed: Agreed) -> bytes:
    """``keccak256(c_1 || ... || c_n)`` over the agreed proofs (already in node order).

    Example: ``proofs_hash(agreed).hex()``.
    """
    return keccak256(b"".join(p.proof.commitment for p in agreed.proofs))


def pack_window(windows: WindowArray, agreement: AgreementSpec) -> bytes:
    """``w[t]`` in the contract's packed :class:`WindowData` form (on-chain proof of storage).

    Example: ``WindowData.decode(pack_window(w, spec)).hash == w.hash``.
    """
    return WindowData.from_windows(windows, agreement.sensors).encode()


@dataclass
class _Window:
    payload: UpdatePayload | None = None
    data: bytes = b""
    signatures: dict[str, Signature] = field(default_factory=dict)
    early: dict[str, Signature] = field(default_factory=dict)
    complete: bool = False


class UpdateAssembler:
    """Collect every node's signature of the contract update of each agreed window.

    Example::

        assembler = UpdateAssembler(key, spec)
        body = assembler.on_agreed(agreed, window)          # broadcast body to the others
        update = assembler.on_signature(body_from_peer)      # OnchainUpdate once all signed
    """

    def __init__(self, key: PrivateKey, agreement: AgreementSpec) -> None:
        self.key = key
        self.agreement = agreement
        self._windows: dict[int, _Window] = {}
        self.rejected = 0
        """Update signatures refused (not by a node, or not over our payload)."""

    def payload(self, agreed: Agreed, windows: WindowArray | None) -> tuple[UpdatePayload, bytes]:
        """The contract payload of ``agreed`` and the window data it commits to."""
        if agreed.result is None:
            raise InvalidInput(f"window {agreed.t} has the null result: nothing goes on-chain")
        data = b""
        if self.agreement.qos is QoS.ONCHAIN_PROOF:
            if windows is None:
                raise InvalidInput(f"on-chain proof of storage needs the data of window {agreed.t}")
            data = pack_window(windows, self.agreement)
        payload = UpdatePayload.for_window(
            self.agreement.address,
            agreed.t,
            agreed.result,
            agreed.window_hash,
            proofs_hash=proofs_hash(agreed),
            data=data or None,
        )
        return payload, data

    def on_agreed(
        self, agreed: Agreed, windows: WindowArray | None
    ) -> tuple[bytes | None, OnchainUpdate | None]:
        """Sign the update of an agreed window: the body to broadcast, and the update if complete.

        The body is ``None`` for the null result (nothing to sign).
        """
        if agreed.result is None:
            return None, None
        state = self._windows.setdefault(agreed.t, _Window())
        if state.payload is not None:
            return None, None
        state.payload, state.data = self.payload(agreed, windows)
        digest = state.payload.typed_hash(self.agreement.chain_id).digest
        signature = state.payload.sign(self.key, self.agreement.chain_id)
        state.signatures[self.key.address] = signature
        for signer, early in state.early.items():
            if recover_hash(digest, early) == signer:
                state.signatures[signer] = early
            else:
                self.rejected += 1
        state.early.clear()
        body = abi_encode(_SIGNATURE_MESSAGE, [agreed.t, self.key.address, signature.to_bytes()])
        return body, self._complete(agreed.t, state)

    def on_signature(self, body: bytes) -> OnchainUpdate | None:
        """A peer's signature message; the complete update once every node signed.

        Raises :class:`InvalidSignature` for a signature not by a node of the agreement
        or not over the payload this node agreed on, :class:`InvalidInput` if malformed.
        """
        t, signer, raw = abi_decode(_SIGNATURE_MESSAGE, body)
        signer = checksum_address(signer)
        if signer not in self.agreement.nodes or signer == self.key.address:
            self.rejected += 1
            raise InvalidSignature(f"{signer} is not another node of this agreement")
        signature = Signature.from_bytes(raw)
        state = self._windows.setdefault(t, _Window())
        if state.payload is None:
            state.early[signer] = signature
            return None
        if (
            recover_hash(state.payload.typed_hash(self.agreement.chain_id).digest, signature)
            != signer
        ):
            self.rejected += 1
            raise InvalidSignature(
                f"the update signature of window {t} is not {signer}'s over our payload"
            )
        state.signatures[signer] = signature
        return self._complete(t, state)

    def forget(self, t: int) -> None:
        """Drop the state of window ``t`` (recorded on-chain)."""
        self._windows.pop(t, None)

    def _complete(self, t: int, state: _Window) -> OnchainUpdate | None:
        if state.complete or not all(n in state.signatures for n in self.agreement.nodes):
            return None
        state.complete = True
        return self._build(t, state)

    def _build(self, t: int, state: _Window) -> OnchainUpdate:
        assert state.payload is not None
        return OnchainUpdate(
            t,
            state.payload.result,
            state.payload.window_hash,
            state.payload.proofs_hash,
            tuple(state.signatures[n] for n in self.agreement.nodes),
            state.data,
        )
