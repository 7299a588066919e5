"""Signed, sequence-numbered sensor messages (paper 002, section 3), shared by devices and nodes.

A sensor declares ``d_s = {PU_s, c_s, type_1 x_1, ...}`` (:class:`SensorDeclaration`)
and signs each message ``m_{s,q}`` (:func:`sign_sensor_message`); whoever receives it
verifies the schema and the signature (:func:`verify_sensor_message`, or the fast
:class:`SensorVerifier` at ingestion) and tracks sequence numbers for replays and gaps
(:class:`SequenceTracker`, :class:`SensorInbox`). See ``README.md`` in this folder.

Example::

    from pervasive.sensing import SensorDeclaration, sign_sensor_message, SensorVerifier
    decl = SensorDeclaration.create(key.public_key, "thermo", [("celsius", "int64")])
    wire = sign_sensor_message(key, decl, 0, [21]).encode()
    message = SensorVerifier([decl]).verify(wire)
"""

from pervasive.sensing.declaration import SensorDeclaration
from pervasive.sensing.message import (
    SENSOR_DOMAIN_SEPARATOR,
    SENSOR_MESSAGE_TYPE,
    SensorMessage,
    decode_sensor_message,
    sign_sensor_message,
    verify_sensor_message,
)
from pervasive.sensing.sequence import GapEvent, InboxResult, SensorInbox, SequenceTracker
from pervasive.sensing.verifier import SensorVerifier, VerifiedSensorMessage

__all__ = [
    "SENSOR_DOMAIN_SEPARATOR",
    "SENSOR_MESSAGE_TYPE",
    "GapEvent",
    "InboxResult",
    "SensorDeclaration",
    "SensorInbox",
    "SensorMessage",
    "SensorVerifier",
    "SequenceTracker",
    "VerifiedSensorMessage",
    "decode_sensor_message",
    "sign_sensor_message",
    "verify_sensor_message",
]
