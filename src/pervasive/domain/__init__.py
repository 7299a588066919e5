"""Pure domain types of pervasive, defined once: no I/O, no web3, only ``crypto`` and ``errors``.

The registry's entities, the closed set of sensor field types, an agreement's terms
(quality of service, signing mode, reaction) and its update struct are used by the
contract wrappers (``contracts/``), the sensor messages (``sensing/``) and the nodes
(``offchain/``) alike; each lives here so that none of them keeps a mirror.

Example::

    from pervasive.domain import AgreementTerms, QoS, SigningMode, Update
"""

from pervasive.domain.entities import (
    ENDPOINT_SCHEMES,
    MAX_ENDPOINT,
    IntermediateNode,
    Sensor,
    User,
    check_account,
    check_endpoint,
    check_fields,
    check_id,
    check_public_key,
    check_sensor_type,
)
from pervasive.domain.sale_receipt import InvalidReceipt, SaleReceipt
from pervasive.domain.sensor_fields import (
    MAX_FIELD_NAME,
    MAX_FIELDS,
    FieldType,
    SensorField,
    check_field_name,
)
from pervasive.domain.terms import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    LEADER_ROTATING,
    MAX_NODES,
    MAX_PARTIES,
    MAX_SENSORS,
    TERMS_TYPE,
    AgreementTerms,
    QoS,
    Reaction,
    ReactionKind,
    SigningMode,
    agreement_domain,
)
from pervasive.domain.update import UPDATE_TYPE, SignedUpdate, Update, proofs_hash

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "ENDPOINT_SCHEMES",
    "LEADER_ROTATING",
    "MAX_ENDPOINT",
    "MAX_FIELDS",
    "MAX_FIELD_NAME",
    "MAX_NODES",
    "MAX_PARTIES",
    "MAX_SENSORS",
    "TERMS_TYPE",
    "UPDATE_TYPE",
    "AgreementTerms",
    "FieldType",
    "IntermediateNode",
    "InvalidReceipt",
    "QoS",
    "Reaction",
    "ReactionKind",
    "SaleReceipt",
    "Sensor",
    "SensorField",
    "SignedUpdate",
    "SigningMode",
    "Update",
    "User",
    "agreement_domain",
    "check_account",
    "check_endpoint",
    "check_field_name",
    "check_fields",
    "check_id",
    "check_public_key",
    "check_sensor_type",
    "proofs_hash",
]
