"""Reference verifier of update calldata: what the Agreement contract must check.

These functions take the agreement and the ABI calldata of an update
(:meth:`FullUpdateCall.calldata`, :meth:`CompactUpdateCall.calldata`) and redo, with
nothing but ``keccak256``, ``abi_encode`` and ``ecrecover``, the checks a Vyper
contract performs before storing ``map_a[t] = (f(w[t]), P_t, w[t])``. They document
the on-chain rules executably, and the tests run every update the protocol emits
through them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pervasive.crypto import abi_decode, abi_encode, keccak256, recover_hash
from pervasive.errors import InvalidInput, InvalidSignature
from pervasive.offchain.agreement import AgreementSpec, QoS
from pervasive.offchain.messages import PROOF_TYPE, REVEAL_TYPE, UPDATE_TYPE
from pervasive.offchain.sensor_message import SENSOR_DOMAIN_SEPARATOR
from pervasive.offchain.window import decode_window_array
from pervasive.offchain.window_data import WindowData

__all__ = ["VerifiedUpdate", "verify_compact_update", "verify_full_update"]

FULL_UPDATE_ARGS = [
    "uint256",
    "bytes",
    "bytes32",
    "bytes32[]",
    "bytes[][]",
    "bytes32[]",
    "bytes[]",
    "bytes",
]
COMPACT_UPDATE_ARGS = ["uint256", "bytes", "bytes32", "bytes32", "bytes", "bytes[]"]


@dataclass(frozen=True)
class VerifiedUpdate:
    """What the contract stores once the checks pass."""

    t: int
    result: bytes
    window_hash: bytes
    window_data: bytes


def _digest(
    domain: bytes, type_signature: str, abi_types: list[str], values: list[object]
) -> bytes:
    typehash = keccak256(type_signature.encode())
    struct = keccak256(abi_encode(["bytes32", *abi_types], [typehash, *values]))
    return keccak256(b"\x19\x01" + domain + struct)


def _check_window(spec: AgreementSpec, window_hash: bytes, data: bytes, t: int) -> None:
    if spec.qos is not QoS.ONCHAIN_PROOF:
        if data:
            raise InvalidInput("window data is only sent under on-chain proof of storage")
        return
    windows = decode_window_array(data, spec.window)
    if windows.t != t or windows.hash != window_hash or not windows.complete:
        raise InvalidInput("window data does not hash to the agreed H(w[t])")
    declared = {d.address for d in spec.sensors}
    for message in windows.messages():
        if message.sensor not in declared:
            raise InvalidInput(f"window holds a message of undeclared sensor {message.sensor}")
        digest = keccak256(b"\x19\x01" + SENSOR_DOMAIN_SEPARATOR + message.struct_hash)
        if recover_hash(digest, message.signature) != message.sensor:
            raise InvalidSignature(
                f"sensor message q={message.sequence} is not signed by its sensor"
            )


def verify_full_update(spec: AgreementSpec, calldata: bytes) -> VerifiedUpdate:
    """Check a standard-protocol update: ``n`` proofs each signed by all ``n`` nodes, ``n`` reveals.

    Raises :class:`InvalidSignature` or :class:`InvalidInput` when the contract would revert.

    Example: ``verify_full_update(spec, submit.call.calldata())``.
    """
    t, result, window_hash, commitments, proof_sigs, secrets, reveal_sigs, data = abi_decode(
        FULL_UPDATE_ARGS, calldata
    )
    nodes, domain = spec.nodes, spec.domain_separator
    n = len(nodes)
    if not (len(commitments) == len(proof_sigs) == len(secrets) == len(reveal_sigs) == n):
        raise InvalidInput(f"an update carries exactly one proof and one reveal per node ({n})")
    for i, node in enumerate(nodes):
        proof_digest = _digest(
            domain,
            PROOF_TYPE,
            ["bytes32", "uint256", "address", "bytes32"],
            [commitments[i], t, spec.address, window_hash],
        )
        if len(proof_sigs[i]) != n:
            raise InvalidInput(f"proof of {node} needs {n} signatures")
        for j, signer in enumerate(nodes):
            if recover_hash(proof_digest, proof_sigs[i][j]) != signer:
                raise InvalidSignature(f"proof of {node} lacks the signature of {signer}")
        opened = keccak256(
            abi_encode(["bool", "bytes", "bytes32", "address"], [True, result, secrets[i], node])
        )
        if opened != commitments[i]:
            raise InvalidInput(f"the reveal of {node} does not open its commitment")
        reveal_digest = _digest(
            domain,
            REVEAL_TYPE,
            ["address", "uint256", "bool", "bytes32", "bytes32"],
            [spec.address, t, True, keccak256(result), secrets[i]],
        )
        if recover_hash(reveal_digest, reveal_sigs[i]) != node:
            raise InvalidSignature(f"the reveal of {node} is not signed by it")
    _check_window(spec, window_hash, data, t)
    return VerifiedUpdate(t, result, window_hash, data)


def verify_compact_update(spec: AgreementSpec, calldata: bytes) -> VerifiedUpdate:
    """Check a fast-protocol update: one ``Update`` struct signed by every node, in node order.

    This is the contract's own ``update``/``update_with_data`` check: ``dataHash`` is
    ``keccak256(data)`` under on-chain proof of storage (the packed
    :class:`~pervasive.offchain.window_data.WindowData`, which must hash to ``H(w[t])``
    and carry valid sensor signatures), zero otherwise.

    Example: ``verify_compact_update(spec, submit.call.calldata())``.
    """
    t, result, window_hash, proofs_hash, data, signatures = abi_decode(
        COMPACT_UPDATE_ARGS, calldata
    )
    if len(signatures) != len(spec.nodes):
        raise InvalidInput(f"a compact update needs {len(spec.nodes)} signatures")
    if spec.qos is QoS.ONCHAIN_PROOF:
        packed = WindowData.decode(data)
        if packed.hash != window_hash:
            raise InvalidInput("window data does not hash to the agreed H(w[t])")
        packed.verify_signatures()
        data_hash = keccak256(data)
    elif data:
        raise InvalidInput("window data is only sent under on-chain proof of storage")
    else:
        data_hash = bytes(32)
    digest = _digest(
        spec.domain_separator,
        UPDATE_TYPE,
        ["address", "uint256", "bytes32", "bytes32", "bytes32", "bytes32"],
        [spec.address, t, keccak256(result), window_hash, proofs_hash, data_hash],
    )
    for node, signature in zip(spec.nodes, signatures, strict=True):
        if recover_hash(digest, signature) != node:
            raise InvalidSignature(f"the compact update lacks the signature of {node}")
    return VerifiedUpdate(t, result, window_hash, data)
