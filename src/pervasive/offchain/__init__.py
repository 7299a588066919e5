"""DIVERSITY off-chain execution (paper 002): sensors, windows, the intermediate-node protocol.

Sans-I/O: everything here takes messages and returns actions; the node process wires
MQTT and the chain around it. See ``README.md`` in this folder and
``docs/offchain-protocol.md`` for the exact signed encodings.

Example::

    from pervasive.offchain import IntermediateNode, WindowBuilder
    node = IntermediateNode(key, spec, function)
    actions = node.start_window(window_array, now=0.0)
"""

from pervasive.offchain.agreement import AgreementSpec, QoS, SigningMode
from pervasive.offchain.declaration import FieldType, SensorDeclaration, SensorField
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
    SQLiteRoundJournal,
)
from pervasive.offchain.messages import (
    CompactUpdate,
    MessageKind,
    ProofOfComputation,
    ProtocolMessage,
    Reveal,
    SignedProof,
    commitment,
    decode_protocol_message,
)
from pervasive.offchain.outcomes import (
    Action,
    Agreed,
    CompactUpdateCall,
    Dispute,
    DisputeEvidence,
    DisputeKind,
    FullUpdateCall,
    Send,
    SignedReveal,
    SubmitUpdate,
    UpdateCall,
)
from pervasive.offchain.protocol import IntermediateNode, MessageStats, Phase
from pervasive.offchain.sensor_message import (
    SENSOR_DOMAIN_SEPARATOR,
    SensorMessage,
    decode_sensor_message,
    sign_sensor_message,
    verify_sensor_message,
)
from pervasive.offchain.sequence import GapEvent, InboxResult, SensorInbox, SequenceTracker
from pervasive.offchain.window import (
    SensorWindow,
    WindowArray,
    WindowBuilder,
    WindowSpec,
    sliding_windows,
    window,
)

__all__ = [
    "SENSOR_DOMAIN_SEPARATOR",
    "Action",
    "Agreed",
    "AgreementSpec",
    "CompactUpdate",
    "CompactUpdateCall",
    "Dispute",
    "DisputeEvidence",
    "DisputeKind",
    "FieldType",
    "FullUpdateCall",
    "FunctionMismatch",
    "FunctionRegistry",
    "GapEvent",
    "InboxResult",
    "IntermediateNode",
    "JournalEntry",
    "MemoryRoundJournal",
    "MessageKind",
    "MessageStats",
    "OffchainFunction",
    "Phase",
    "ProofOfComputation",
    "ProtocolMessage",
    "QoS",
    "Result",
    "Reveal",
    "RoundJournal",
    "SQLiteRoundJournal",
    "Send",
    "SensorDeclaration",
    "SensorField",
    "SensorInbox",
    "SensorMessage",
    "SensorWindow",
    "SequenceTracker",
    "SignedProof",
    "SignedReveal",
    "SigningMode",
    "SubmitUpdate",
    "UpdateCall",
    "WindowArray",
    "WindowBuilder",
    "WindowSpec",
    "commitment",
    "decode_protocol_message",
    "decode_sensor_message",
    "normalise_source",
    "sign_sensor_message",
    "sliding_windows",
    "source_hash",
    "store_function_source",
    "verify_sensor_message",
    "window",
]
