"""Reference verifier of an update: what the Agreement contract checks before recording it.

:func:`verify_update` takes the agreement and a :class:`~pervasive.domain.SignedUpdate`
and redoes, with nothing but ``keccak256`` and ``ecrecover``, the checks the Vyper
contract performs in ``update``/``update_with_data`` before storing
``map_a[t] = (f(w[t]), P_t, w[t])``. It documents the on-chain rules executably; the
tests run every update the protocol emits through it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pervasive.crypto import keccak256, recover_hash
from pervasive.domain import QoS, SignedUpdate
from pervasive.errors import InvalidInput, InvalidSignature
from pervasive.offchain.agreement import AgreementSpec
from pervasive.offchain.window_data import WindowData

__all__ = ["VerifiedUpdate", "verify_update"]


@dataclass(frozen=True)
class VerifiedUpdate:
    """What the contract stores once the checks pass."""

    t: int
    result: bytes
    window_hash: bytes
    window_data: bytes


def verify_update(spec: AgreementSpec, signed: SignedUpdate) -> VerifiedUpdate:
    """Check an update: one ``Update`` struct signed by every node, in node order.

    ``dataHash`` must be ``keccak256(data)`` under on-chain proof of storage (the packed
    :class:`~pervasive.offchain.window_data.WindowData`, which must hash to ``H(w[t])``
    and carry valid sensor signatures), zero otherwise. Raises :class:`InvalidSignature`
    or :class:`InvalidInput` where the contract would revert.

    Example: ``verify_update(spec, submit.transaction)``.
    """
    update, data = signed.update, signed.data
    if update.agreement != spec.address:
        raise InvalidInput(f"the update is for agreement {update.agreement}, not {spec.address}")
    if len(signed.signatures) != len(spec.nodes):
        raise InvalidInput(f"an update needs {len(spec.nodes)} signatures")
    if spec.qos is QoS.ONCHAIN_PROOF:
        packed = WindowData.decode(data)
        if packed.hash != update.window_hash:
            raise InvalidInput("window data does not hash to the agreed H(w[t])")
        packed.verify_signatures()
        if update.data_hash != keccak256(data):
            raise InvalidInput("dataHash is not keccak256 of the window data")
    elif data or update.data_hash != bytes(32):
        raise InvalidInput("window data is only sent under on-chain proof of storage")
    digest = update.typed_hash(spec.chain_id).digest
    for node, signature in zip(spec.nodes, signed.signatures, strict=True):
        if recover_hash(digest, signature) != node:
            raise InvalidSignature(f"the update lacks the signature of {node}")
    return VerifiedUpdate(update.window, update.result, update.window_hash, data)
