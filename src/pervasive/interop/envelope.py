"""The CloudEvents 1.0 envelope of a pervasive event: ids, sources, topics, JSON.

Ids sort by chain position, as Hyperledger FireFly's ``protocolId``: zero-padded block
number, transaction index and log index (``000000000042/000001/000003``), followed by the
first 8 hex digits of the block hash, so that the log which takes the same position on
another branch after a reorganisation gets another id, and by ``.<n>`` when the same log
comes back a second time (a branch that won, lost and won again). ``source`` names the
chain and the contract as a CAIP-10 account id (``eip155:<chain id>:<address>``); shadow
changes use ``urn:pervasive:shadow:<thing>``. Extension attributes carry the chain
position (``blocknumber``, ``blockhash``, ``txhash``, ``txindex``, ``logindex``); a
retraction carries ``retracts``. The ``cloudevents`` SDK builds the object and defines
the structured JSON format (``application/cloudevents+json``); :func:`write_event` writes
the common case (JSON ``data``, version 1.0) itself, byte for byte as the SDK's
``JSONFormat.write`` does (a test pins the two together) at a third less cost, and hands
anything else to the SDK.

Example::

    position = ChainPosition(31337, contract, 42, block_hash, tx_hash, 1, 3, when)
    event_id(position)        # '000000000042/000001/000003/9f2c01ab'
    chain_source(31337, contract)   # 'eip155:31337:0x5FbD...'
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

__all__ = [
    "CONTENT_TYPE",
    "RETRACTED_SCHEMA_ID",
    "RETRACTED_TYPE",
    "ChainPosition",
    "build_event",
    "chain_source",
    "event_id",
    "event_topic",
    "json_value",
    "read_event",
    "retraction",
    "shadow_source",
    "write_event",
]

CONTENT_TYPE = "application/cloudevents+json"
"""Media type of one event in the structured JSON format (MQTT payloads, SSE data)."""
RETRACTED_TYPE = "dev.pervasive.event.retracted"
"""``type`` of the event that says an earlier one left the chain (a reorganisation)."""
RETRACTED_SCHEMA_ID = "urn:pervasive:schema:interop:retracted:1"
"""``dataschema`` of a retraction (``schemas/retracted.json``)."""
_FORMAT = JSONFormat()
_ENCODER = json.JSONEncoder()
"""The SDK's JSON settings (``json.dumps`` defaults), built once instead of per event."""


@dataclass(frozen=True)
class ChainPosition:
    """Where a log sits on its chain: what its id, source and extensions are made of."""

    chain_id: int
    address: str
    block_number: int
    block_hash: str
    transaction_hash: str
    transaction_index: int
    log_index: int
    time: dt.datetime
    """The block's timestamp (UTC)."""
    revision: int = 0
    """How many times this very log was delivered and retracted before."""


def event_id(position: ChainPosition) -> str:
    """The event's id: sorts by chain position, unique across reorganisations.

    Example: ``event_id(position)`` == ``"000000000042/000001/000003/9f2c01ab"``.
    """
    base = (
        f"{position.block_number:012d}/{position.transaction_index:06d}/"
        f"{position.log_index:06d}/{position.block_hash.removeprefix('0x')[:8]}"
    )
    return base if position.revision == 0 else f"{base}.{position.revision}"


def chain_source(chain_id: int, address: str) -> str:
    """CAIP-10 account id of a contract: ``eip155:<chain id>:<address>``.

    Example: ``chain_source(1, "0xAb..")`` == ``"eip155:1:0xAb.."``.
    """
    return f"eip155:{chain_id}:{address}"


def shadow_source(thing: str) -> str:
    """``source`` of a thing's shadow changes: ``urn:pervasive:shadow:<thing>``.

    Example: ``shadow_source("lock-1")`` == ``"urn:pervasive:shadow:lock-1"``.
    """
    return f"urn:pervasive:shadow:{thing}"


def event_topic(scope: str, emitter: str, event_type: str) -> str:
    """The MQTT topic of an event: ``pervasive/events/<chain id>/<contract>/<type>``.

    Shadow changes use ``scope="shadow"`` and the thing as ``emitter``.

    Example: ``event_topic("31337", "0xAb..", "dev.pervasive.x")``.
    """
    return f"pervasive/events/{scope}/{emitter}/{event_type}"


def json_value(value: Any) -> Any:
    """A decoded ABI value as JSON: bytes as ``0x`` hex, tuples as lists, the rest as is.

    Example: ``json_value((b"\\x01", 2))`` == ``["0x01", 2]``.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        return value  # the common case, without the isinstance checks below
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, tuple | list):
        return [json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    return value


def build_event(
    *,
    id: str,
    source: str,
    type: str,
    time: dt.datetime,
    data: dict[str, Any],
    dataschema: str,
    subject: str | None = None,
    extensions: Mapping[str, str | int] | None = None,
) -> CloudEvent:
    """A CloudEvent 1.0 with JSON ``data`` (the SDK checks the attributes).

    Example::

        build_event(id="1", source="urn:x", type="dev.x.y", time=now, data={}, dataschema="urn:s")
    """
    attributes: dict[str, Any] = {
        "id": id,
        "source": source,
        "type": type,
        "specversion": "1.0",
        "time": time,
        "datacontenttype": "application/json",
        "dataschema": dataschema,
    }
    if subject is not None:
        attributes["subject"] = subject
    if extensions:
        attributes.update(extensions)
    return CloudEvent(attributes=attributes, data=data)


def retraction(original: CloudEvent, *, time: dt.datetime, reason: str) -> CloudEvent:
    """The event saying ``original`` left the chain: same source, id ``<id>/retracted``.

    Example: ``retraction(event, time=now, reason="reorganisation").get_type()``.
    """
    attributes = original.get_attributes()
    extensions: dict[str, str | int] = {"retracts": original.get_id()}
    for name in ("blocknumber", "blockhash", "txhash"):
        if name in attributes:
            extensions[name] = attributes[name]
    return build_event(
        id=f"{original.get_id()}/retracted",
        source=original.get_source(),
        type=RETRACTED_TYPE,
        time=time,
        data={"id": original.get_id(), "type": original.get_type(), "reason": reason},
        dataschema=RETRACTED_SCHEMA_ID,
        subject=original.get_subject(),
        extensions=extensions,
    )


def write_event(event: CloudEvent) -> bytes:
    """The structured JSON format of ``event`` (the SDK's ``JSONFormat``).

    Example: ``json.loads(write_event(event))["specversion"]`` == ``"1.0"``.
    """
    data = event.get_data()
    attributes = event.get_attributes()
    if (
        type(data) is not dict
        or attributes.get("specversion") != "1.0"
        or attributes.get("datacontenttype") != "application/json"
    ):
        return _FORMAT.write(event)  # binary or non-JSON data: the SDK's rules
    body = dict(attributes)
    for name, value in attributes.items():
        if isinstance(value, dt.datetime):
            text = value.isoformat()  # as the SDK's encoder: UTC written with "Z"
            body[name] = text[:-6] + "Z" if text.endswith("+00:00") else text
    body["data"] = data
    try:
        return _ENCODER.encode(body).encode("utf-8")
    except (TypeError, ValueError):
        return _FORMAT.write(event)  # a value only the SDK's encoder writes (a datetime)


def read_event(payload: bytes | str) -> CloudEvent:
    """Parse the structured JSON format back into a CloudEvent (consumers, tests).

    Example: ``read_event(message.payload).get_id()``.
    """
    event = _FORMAT.read(CloudEvent, payload)
    assert isinstance(event, CloudEvent)
    return event
