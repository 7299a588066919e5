"""The Ethereum hard fork the platform runs: one name for every backend and the compiler.

The embedded chain (py-evm, :mod:`pervasive.chain.embedded`) builds its VM from it,
anvil is started with ``--hardfork`` set to it (:mod:`pervasive.chain.anvil`), and the
Vyper compiler targets it (``pervasive.contracts.compiler.EVM_VERSION``). Prague
(May 2025) brings the EIP-2537 BLS12-381 precompiles at 0x0b..0x11, which the notary's
threshold signatures need on-chain, and EIP-7623's floor price for calldata-heavy
transactions. A JSON-RPC node of the ``rpc`` backend runs whatever its network runs.
"""

from __future__ import annotations

__all__ = ["BLS12_381_PRECOMPILES", "HARDFORK"]

HARDFORK = "prague"
"""The fork's name as anvil, Vyper and the execution specs spell it."""

BLS12_381_PRECOMPILES = {
    "G1ADD": 0x0B,
    "G1MSM": 0x0C,
    "G2ADD": 0x0D,
    "G2MSM": 0x0E,
    "PAIRING_CHECK": 0x0F,
    "MAP_FP_TO_G1": 0x10,
    "MAP_FP2_TO_G2": 0x11,
}
"""EIP-2537's precompile addresses, by the EIP's names (G1MUL and G2MUL are MSMs of one pair)."""
