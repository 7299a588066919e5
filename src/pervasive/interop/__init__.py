"""One event schema: contract events, platform events and shadow changes as CloudEvents 1.0.

Paper 001 (section 3.1, "interoperability support"): heterogeneous events mapped to
one envelope, declared as data (``EventMapping``), validated against JSON Schemas,
delivered exactly once across restarts and reorganisations through the chain's
``EventFollower``, stored in the data directory's one log ``<home>/interop/events.sqlite``
(every feed appends under its own origin: ``platform``, ``service-<name>``), each feed
publishing its own on MQTT, the web app streaming them all over HTTP. See ``README.md``
in this folder and ``docs/interop.md``.

Example::

    from pervasive.interop import InteropFeed, compile_mappings
    feed = InteropFeed(ledger, settings.home, name="service-shipping")
    feed.follow(address, compile_mappings(abi, spec.events, base=spec.root), start_block=block)
    await feed.run(connection)
"""

from pervasive.interop.declarations import (
    BUILTIN,
    BUILTIN_NAMES,
    SHADOW_FIELDS,
    builtin_mappings,
    compile_builtin,
    compile_shadow_mapping,
    load_mappings,
)
from pervasive.interop.envelope import (
    CONTENT_TYPE,
    RETRACTED_SCHEMA_ID,
    RETRACTED_TYPE,
    ChainPosition,
    build_event,
    chain_source,
    event_id,
    event_topic,
    json_value,
    read_event,
    retraction,
    shadow_source,
    write_event,
)
from pervasive.interop.errors import EventRefused, MappingError
from pervasive.interop.feed import InteropFeed, events_path
from pervasive.interop.handler import MappingHandler, log_key
from pervasive.interop.mapping import (
    CHAIN_FIELDS,
    CompiledMapping,
    CompiledMappings,
    EventMapping,
    compile_mappings,
    compile_record_mapping,
)
from pervasive.interop.platform_contracts import PlatformContracts
from pervasive.interop.publisher import EventPublisher
from pervasive.interop.schemas import (
    BUILTIN_SCHEMAS,
    JsonSchema,
    SchemaRegistry,
    is_absolute_uri,
    load_schema,
)
from pervasive.interop.shadow_events import ShadowEvents
from pervasive.interop.store import SCHEMA, EventStore, StoredEvent

__all__ = [
    "BUILTIN",
    "BUILTIN_NAMES",
    "BUILTIN_SCHEMAS",
    "CHAIN_FIELDS",
    "CONTENT_TYPE",
    "RETRACTED_SCHEMA_ID",
    "RETRACTED_TYPE",
    "SCHEMA",
    "SHADOW_FIELDS",
    "ChainPosition",
    "CompiledMapping",
    "CompiledMappings",
    "EventMapping",
    "EventPublisher",
    "EventRefused",
    "EventStore",
    "InteropFeed",
    "JsonSchema",
    "MappingError",
    "MappingHandler",
    "PlatformContracts",
    "SchemaRegistry",
    "ShadowEvents",
    "StoredEvent",
    "build_event",
    "builtin_mappings",
    "chain_source",
    "compile_builtin",
    "compile_mappings",
    "compile_record_mapping",
    "compile_shadow_mapping",
    "event_id",
    "event_topic",
    "events_path",
    "is_absolute_uri",
    "json_value",
    "load_mappings",
    "load_schema",
    "log_key",
    "read_event",
    "retraction",
    "shadow_source",
    "write_event",
]
