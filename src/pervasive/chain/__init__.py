"""The ledger layer: backends, JSON-RPC client, accounts, transactions, event following.

Knows nothing of IoT. See README.md in this folder for the control flow.
"""

from pervasive.chain.accounts import Keystore, Signer
from pervasive.chain.anvil import AnvilNode, find_anvil
from pervasive.chain.backends import anvil_dev_keys, open_embedded_via_gateway, open_ledger
from pervasive.chain.checkpoints import Checkpoint
from pervasive.chain.follower import EventFollower, FollowerError, LogHandler
from pervasive.chain.hardfork import HARDFORK
from pervasive.chain.ledger import Ledger
from pervasive.chain.raw_transactions import DecodedTransaction, decode_raw_transaction
from pervasive.chain.records import Log, Receipt
from pervasive.chain.reverts import decode_revert
from pervasive.chain.rpc import (
    BlockRef,
    LedgerOptions,
    PooledTransaction,
    RequestRefused,
    RpcClient,
    TransactionRefused,
)
from pervasive.chain.transactions import (
    ContractCall,
    Finality,
    PendingTransaction,
    Settlement,
    TransactionManager,
    already_sent,
    nonce_too_low,
)

__all__ = [
    "HARDFORK",
    "AnvilNode",
    "BlockRef",
    "Checkpoint",
    "ContractCall",
    "DecodedTransaction",
    "EventFollower",
    "Finality",
    "FollowerError",
    "Keystore",
    "Ledger",
    "LedgerOptions",
    "Log",
    "LogHandler",
    "PendingTransaction",
    "PooledTransaction",
    "Receipt",
    "RequestRefused",
    "RpcClient",
    "Settlement",
    "Signer",
    "TransactionManager",
    "TransactionRefused",
    "already_sent",
    "anvil_dev_keys",
    "decode_raw_transaction",
    "decode_revert",
    "find_anvil",
    "nonce_too_low",
    "open_embedded_via_gateway",
    "open_ledger",
]
