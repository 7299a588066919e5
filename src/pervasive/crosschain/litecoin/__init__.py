"""Litecoin regtest as paper 003's heterogeneous data chain B_d, and the native HTLC baseline.

A real ``litecoind`` (:class:`LitecoinNode`) answers a small async JSON-RPC client
(:class:`LitecoinRpc`); :class:`LitecoinDataChain` implements the
:class:`~pervasive.crosschain.chains.DataChain` port with OP_RETURN postings (§V-B) and
``gettxoutproof`` inclusion proofs verified by our own partial-Merkle-tree walk
(:mod:`.merkle`, used in §V-C's challenge); :class:`LitecoinHtlc` is the Script HTLC the
paper's scheme is measured against. See ``README.md`` in this folder.

Example::

    node = LitecoinNode(datadir=tmp_path / "ltc")
    await node.start()
    await node.fund()
    chain = LitecoinDataChain(node.rpc, wallet=node.wallet)
"""

from pervasive.crosschain.litecoin.data_chain import (
    INDEX_TAG,
    LitecoinDataChain,
    check_inclusion_proof,
    index_payload,
    parse_index_payload,
    transaction_id,
)
from pervasive.crosschain.litecoin.htlc import (
    DEFAULT_FEE,
    HtlcLock,
    HtlcTerms,
    LitecoinHtlc,
    claim_transaction,
    refund_transaction,
    revealed_preimage,
)
from pervasive.crosschain.litecoin.merkle import (
    MerkleBlock,
    block_hash,
    build_merkle_block,
    extract_matches,
    merkle_root,
)
from pervasive.crosschain.litecoin.node import COINBASE_MATURITY, LitecoinNode, find_litecoind
from pervasive.crosschain.litecoin.rpc import LitecoinRpc, LitecoinRpcError

__all__ = [
    "COINBASE_MATURITY",
    "DEFAULT_FEE",
    "INDEX_TAG",
    "HtlcLock",
    "HtlcTerms",
    "LitecoinDataChain",
    "LitecoinHtlc",
    "LitecoinNode",
    "LitecoinRpc",
    "LitecoinRpcError",
    "MerkleBlock",
    "block_hash",
    "build_merkle_block",
    "check_inclusion_proof",
    "claim_transaction",
    "extract_matches",
    "find_litecoind",
    "index_payload",
    "merkle_root",
    "parse_index_payload",
    "refund_transaction",
    "revealed_preimage",
    "transaction_id",
]
