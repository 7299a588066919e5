"""The oracle committee of pervasive contracts (paper 001, section 4), with a checkable proof.

A consumer contract asks the :class:`~pervasive.contracts.oracle_hub.OracleHub`
(``query(kind, source, path)``); each oracle node (:class:`OracleNode`, one
``pervasive oracle run`` process) observes the source (:class:`SourceFetcher`), signs an
EIP-712 report and sends it to the other members over MQTT; when ``t`` reports agree, the
designated member sends ``fulfill`` and the hub checks the ``t`` signatures before it
calls the consumer back. DEVICE queries are answered from the signed readings a node
verified itself (:class:`ReadingBook`). The protocol is :class:`OracleProtocol`, sans
I/O. See ``README.md`` in this folder for the control flow and what it may import.

Example::

    node = OracleNode(key=key, hub=hub, connection=mqtt, database=path,
                      fetcher=SourceFetcher(allow=["http://127.0.0.1:8080/"],
                                            fetch_timeout=5.0, max_response_bytes=65536),
                      settings=settings.oracle)
    await node.run()
"""

from pervasive.oracle.local import local_committee
from pervasive.oracle.node import ORACLE_PREFIX, AttemptPort, NodeStats, OracleNode
from pervasive.oracle.protocol import Action, Fetch, OracleProtocol, Query, submission_round
from pervasive.oracle.readings import (
    DEVICE_READINGS,
    DeclarationsReader,
    HeldReading,
    ReadingBook,
    parse_device_path,
)
from pervasive.oracle.reports import (
    COMMITTEE_DOMAIN_NAME,
    REPORT,
    ReportBody,
    committee_domain,
    decode_report_body,
)
from pervasive.oracle.sources import (
    CidReader,
    Observation,
    SourceFailed,
    SourceFetcher,
    SourceRefused,
    extract_value,
    url_allowed,
)

__all__ = [
    "COMMITTEE_DOMAIN_NAME",
    "DEVICE_READINGS",
    "ORACLE_PREFIX",
    "REPORT",
    "Action",
    "AttemptPort",
    "CidReader",
    "DeclarationsReader",
    "Fetch",
    "HeldReading",
    "NodeStats",
    "Observation",
    "OracleNode",
    "OracleProtocol",
    "Query",
    "ReadingBook",
    "ReportBody",
    "SourceFailed",
    "SourceFetcher",
    "SourceRefused",
    "committee_domain",
    "decode_report_body",
    "extract_value",
    "local_committee",
    "parse_device_path",
    "submission_round",
    "url_allowed",
]
