"""DIVERSITY off-chain execution (paper 002): sensors, windows, the intermediate-node protocol.

Sans-I/O: everything here takes messages and returns actions; the node process wires
MQTT and the chain around it. See ``README.md`` in this folder and
``docs/offchain-protocol.md`` for the exact signed encodings.

Example::

    from pervasive.offchain import NodeProtocol, WindowBuilder
    node = NodeProtocol(key, spec, function)
    actions = node.start_window(window_array, now=0.0)
"""

from pervasive.offchain.agreement import AgreementSpec
from pervasive.offchain.bodies import (
    Body,
    DisputeNotice,
    MessageKind,
    ProofsBody,
    RevealBody,
    SignaturesBody,
    UpdateSignature,
    WindowReply,
    WindowRequest,
    decode_body,
)
from pervasive.offchain.functions import (
    FunctionMismatch,
    FunctionRegistry,
    OffchainFunction,
    Result,
    normalise_source,
    source_hash,
    store_function_source,
)
from pervasive.offchain.journal import (
    JournalEntry,
    MemoryRoundJournal,
    RoundJournal,
    RoundStatus,
    SQLiteRoundJournal,
)
from pervasive.offchain.node_protocol import NodeProtocol
from pervasive.offchain.outcomes import Action, Agreed, Dispute, DisputeEvidence, DisputeKind
from pervasive.offchain.qos import WindowStatus, WindowStore, verify_window
from pervasive.offchain.rounds import MessageStats, Phase
from pervasive.offchain.signed import (
    ProofOfComputation,
    Reveal,
    SignedProof,
    SignedReveal,
    commitment,
)
from pervasive.offchain.verification import VerifiedUpdate, verify_update
from pervasive.offchain.window import (
    SensorWindow,
    WindowArray,
    WindowBuilder,
    WindowSpec,
    sliding_windows,
    window,
)
from pervasive.offchain.window_data import WindowData, pack_window

__all__ = [
    "Action",
    "Agreed",
    "AgreementSpec",
    "Body",
    "Dispute",
    "DisputeEvidence",
    "DisputeKind",
    "DisputeNotice",
    "FunctionMismatch",
    "FunctionRegistry",
    "JournalEntry",
    "MemoryRoundJournal",
    "MessageKind",
    "MessageStats",
    "NodeProtocol",
    "OffchainFunction",
    "Phase",
    "ProofOfComputation",
    "ProofsBody",
    "Result",
    "Reveal",
    "RevealBody",
    "RoundJournal",
    "RoundStatus",
    "SQLiteRoundJournal",
    "SensorWindow",
    "SignaturesBody",
    "SignedProof",
    "SignedReveal",
    "UpdateSignature",
    "VerifiedUpdate",
    "WindowArray",
    "WindowBuilder",
    "WindowData",
    "WindowReply",
    "WindowRequest",
    "WindowSpec",
    "WindowStatus",
    "WindowStore",
    "commitment",
    "decode_body",
    "normalise_source",
    "pack_window",
    "sliding_windows",
    "source_hash",
    "store_function_source",
    "verify_update",
    "verify_window",
    "window",
]
