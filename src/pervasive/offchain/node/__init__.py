"""The running intermediate node of DIVERSITY (paper 002): asyncio adapters around the protocol.

See ``README.md`` in this folder and ``docs/intermediate-node.md``.

Example::

    from pervasive.offchain.node import IntermediateNodeService
    async with IntermediateNodeService(key=key, agreement=spec, function=f,
                                       connection=mqtt, chain=port, database=path):
        ...
"""

from pervasive.offchain.node.chain import (
    ALREADY_RECORDED,
    AgreementPort,
    ContractAgreementPort,
    LoadedAgreement,
    load_agreement,
)
from pervasive.offchain.node.ingest import IngestResult, SensorPipeline
from pervasive.offchain.node.message_log import MessageLog
from pervasive.offchain.node.provision import (
    AgreementPlan,
    NodePlan,
    PartyPlan,
    SensorPlan,
    provision_agreement,
)
from pervasive.offchain.node.service import (
    IntermediateNodeService,
    NodeEvent,
    NodeStats,
)
from pervasive.offchain.node.transport import (
    NODES_PREFIX,
    SENSOR_SUFFIX,
    Inbound,
    NodeTopics,
    node_inbox_topic,
    sensor_topic,
    window_reply_topic,
    window_request_topic,
)
from pervasive.offchain.node.window_requests import NotAuthorised, WindowServer, fetch_window

__all__ = [
    "ALREADY_RECORDED",
    "NODES_PREFIX",
    "SENSOR_SUFFIX",
    "AgreementPlan",
    "AgreementPort",
    "ContractAgreementPort",
    "Inbound",
    "IngestResult",
    "IntermediateNodeService",
    "LoadedAgreement",
    "MessageLog",
    "NodeEvent",
    "NodePlan",
    "NodeStats",
    "NodeTopics",
    "NotAuthorised",
    "PartyPlan",
    "SensorPipeline",
    "SensorPlan",
    "WindowServer",
    "fetch_window",
    "load_agreement",
    "node_inbox_topic",
    "provision_agreement",
    "sensor_topic",
    "window_reply_topic",
    "window_request_topic",
]
