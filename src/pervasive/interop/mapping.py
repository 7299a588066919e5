"""Event mappings: how a contract event becomes a CloudEvent 1.0 (paper 001, section 3.1).

A mapping is declared as data (a ``[[events]]`` table of a service spec, or a built-in
TOML file of this package, see :mod:`pervasive.interop.builtin`) and compiled once
against the contract's ABI by :func:`compile_mappings`: the event must exist, every
``data`` source and ``subject`` placeholder must be one of its fields (or ``$block``,
``$transaction``, ``$log_index``, ``$contract``, ``$chain``), ``type`` must be
reverse-DNS, and the schema file a valid draft-07 schema with an absolute ``$id``.
Each failure is a one-line :class:`~pervasive.interop.errors.MappingError`.

A compiled mapping then turns a log into a CloudEvent: decode (``EventSpec.decode``),
pick the ``data`` fields (ABI values as JSON: bytes as ``0x`` hex, tuples as lists),
validate them with the compiled schema, build the envelope
(:mod:`pervasive.interop.envelope`). An event whose data fails its schema raises
:class:`~pervasive.interop.errors.EventRefused`, never anything else.

Example::

    mapping = EventMapping(
        event="CostQuoted",
        type="dev.pervasive.logistics.cost-quoted",
        schema="schemas/cost-quoted.json",
        data={"shipment": "shipment", "cost": "cost", "block": "$block"},
        subject="{shipment}",
    )
    compiled = compile_mappings(artifact.abi, [mapping], base=spec.root)
    event = compiled.map(log, position)      # a CloudEvent, or None for an unmapped log
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastjsonschema
import msgspec
from cloudevents.core.v1.event import CloudEvent

from pervasive.chain import Log
from pervasive.contracts.contract import EventSpec, canonical_type
from pervasive.errors import InternalError
from pervasive.interop.envelope import (
    ChainPosition,
    build_event,
    chain_source,
    event_id,
    json_value,
)
from pervasive.interop.errors import EventRefused, MappingError
from pervasive.interop.schemas import JsonSchema, SchemaRegistry

__all__ = [
    "CHAIN_FIELDS",
    "CompiledMapping",
    "CompiledMappings",
    "EventMapping",
    "compile_mappings",
    "compile_record_mapping",
]

CHAIN_FIELDS = ("$block", "$transaction", "$log_index", "$contract", "$chain")
"""The ``data`` sources that are not event fields but the log's position."""
_TYPE = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*){2,}$")


class EventMapping(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One declared mapping of a contract event to a CloudEvent.

    ``data`` maps each field of the CloudEvent's ``data`` to an event argument or to
    one of ``$block``, ``$transaction``, ``$log_index``, ``$contract``, ``$chain``.
    """

    event: str
    """Name of the contract event (as in the ABI)."""
    type: str
    """CloudEvent ``type``, reverse-DNS, e.g. ``dev.pervasive.logistics.cost-quoted``."""
    schema: str
    """JSON Schema draft-07 file (relative to the declaring file); its ``$id`` is ``dataschema``."""
    data: dict[str, str]
    """``data`` field -> event argument or ``$block|$transaction|$log_index|$contract|$chain``."""
    subject: str | None = None
    """Optional template over event fields, e.g. ``"{shipment}"``."""


@dataclass(frozen=True)
class CompiledMapping:
    """A mapping checked against its event's fields, with its schema compiled."""

    declaration: EventMapping
    schema: JsonSchema
    spec: EventSpec | None
    """The ABI event (``None`` for a record mapping such as shadow changes)."""

    @property
    def type(self) -> str:
        """The CloudEvent ``type``."""
        return self.declaration.type

    def data(
        self, fields: Mapping[str, Any], position: ChainPosition | None = None
    ) -> dict[str, Any]:
        """The CloudEvent ``data``: declared fields picked from ``fields`` (JSON values)."""
        out: dict[str, Any] = {}
        for name, source in self.declaration.data.items():
            if source.startswith("$"):
                out[name] = _chain_field(source, position)
            else:
                out[name] = json_value(fields[source])
        return out

    def subject(self, fields: Mapping[str, Any]) -> str | None:
        """The ``subject`` template filled in, or ``None`` when none is declared."""
        template = self.declaration.subject
        if template is None:
            return None
        return template.format_map({k: _subject_text(v) for k, v in fields.items()})

    def build(
        self,
        fields: Mapping[str, Any],
        *,
        id: str,
        source: str,
        time: Any,
        position: ChainPosition | None = None,
        extensions: Mapping[str, str | int] | None = None,
    ) -> CloudEvent:
        """Pick, validate and wrap ``fields``; :class:`EventRefused` if the data fails the schema.

        Example: ``mapping.build(args, id=..., source=..., time=now)``.
        """
        try:
            data = self.data(fields, position)
            subject = self.subject(fields)
        except (KeyError, ValueError, TypeError) as exc:
            raise EventRefused(
                f"{self.declaration.event} {id} from {source} cannot be mapped ({exc}): "
                "the event does not carry the declared fields; fix the mapping",
                reason="unmappable",
            ) from None
        try:
            self.schema.validate(data)
        except fastjsonschema.JsonSchemaException as exc:
            message = getattr(exc, "message", str(exc))
            raise EventRefused(
                f"{self.declaration.event} {id} from {source} refused: its data fails schema "
                f"{self.schema.id} ({message}); fix the contract's event or the schema",
                reason="schema",
            ) from None
        return build_event(
            id=id,
            source=source,
            type=self.declaration.type,
            time=time,
            data=data,
            dataschema=self.schema.id,
            subject=subject,
            extensions=extensions,
        )

    def map(self, args: Mapping[str, Any], position: ChainPosition) -> CloudEvent:
        """The CloudEvent of decoded event ``args`` at ``position`` (or :class:`EventRefused`).

        Example: ``mapping.map(decoded.args, position).get_id()``.
        """
        extensions: dict[str, str | int] = {
            "blocknumber": position.block_number,
            "blockhash": position.block_hash,
            "txhash": position.transaction_hash,
            "txindex": position.transaction_index,
            "logindex": position.log_index,
        }
        return self.build(
            args,
            id=event_id(position),
            source=chain_source(position.chain_id, position.address),
            time=position.time,
            position=position,
            extensions=extensions,
        )


def _chain_field(source: str, position: ChainPosition | None) -> Any:
    if position is None:
        raise ValueError(f"{source} exists only for chain events")
    if source == "$block":
        return position.block_number
    if source == "$transaction":
        return position.transaction_hash
    if source == "$log_index":
        return position.log_index
    if source == "$contract":
        return position.address
    if source == "$chain":
        return position.chain_id
    raise InternalError(f"unchecked data source {source}")  # compile_mappings refuses others


def _subject_text(value: Any) -> str:
    converted = json_value(value)
    return converted if isinstance(converted, str) else str(converted)


class CompiledMappings:
    """The mappings of one contract, by the topic of their event.

    Example: ``compiled.topics`` (for ``EventFollower(topics=[compiled.topics])``),
    ``compiled.map(log, position)``.
    """

    def __init__(self, mappings: Iterable[CompiledMapping], schemas: SchemaRegistry) -> None:
        self._by_topic: dict[bytes, CompiledMapping] = {}
        for mapping in mappings:
            assert mapping.spec is not None
            self._by_topic[mapping.spec.topic] = mapping
        self.schemas = schemas

    @property
    def topics(self) -> list[bytes]:
        """The first topics of the mapped events."""
        return list(self._by_topic)

    @property
    def mappings(self) -> list[CompiledMapping]:
        """Every compiled mapping."""
        return list(self._by_topic.values())

    def mapping_for(self, log: Log) -> CompiledMapping | None:
        """The mapping of ``log``'s event, or ``None`` when its event is not mapped."""
        return self._by_topic.get(log.topics[0]) if log.topics else None

    def decode(self, log: Log) -> tuple[CompiledMapping, Mapping[str, Any]] | None:
        """The mapping and decoded fields of ``log``; ``None`` when unmapped.

        A log that does not decode as its event raises :class:`EventRefused` (``undecodable``).
        """
        mapping = self.mapping_for(log)
        if mapping is None:
            return None
        assert mapping.spec is not None
        try:
            decoded = mapping.spec.decode(log)
        except InternalError as exc:
            raise EventRefused(
                f"log {log.log_index} of block {log.block_number} is no valid "
                f"{mapping.spec.name} event ({exc}); check the contract's ABI",
                reason="undecodable",
            ) from None
        return mapping, decoded.args

    def map(self, log: Log, position: ChainPosition) -> CloudEvent | None:
        """The CloudEvent of ``log`` at ``position``; ``None`` when its event is not mapped.

        Raises :class:`EventRefused` for a log that does not decode or fails its schema.
        """
        found = self.decode(log)
        if found is None:
            return None
        mapping, args = found
        return mapping.map(args, position)


def _check_declaration(
    mapping: EventMapping, fields: Sequence[str], where: str, *, chain: bool
) -> None:
    if not _TYPE.match(mapping.type):
        raise MappingError(
            f"{where}: type {mapping.type!r} is not reverse-DNS; write e.g. "
            "'dev.pervasive.logistics.cost-quoted' (lowercase, at least three dotted parts)"
        )
    if not mapping.data:
        raise MappingError(f"{where}: data is empty; map at least one field")
    allowed = set(fields) | (set(CHAIN_FIELDS) if chain else set())
    for name, source in mapping.data.items():
        if not name:
            raise MappingError(f"{where}: a data field has an empty name")
        if source not in allowed:
            raise MappingError(
                f"{where}: data field {name!r} names unknown field {source!r}; "
                f"use one of {', '.join(sorted(allowed))}"
            )
    if mapping.subject is not None:
        try:
            parts = list(string.Formatter().parse(mapping.subject))
        except ValueError as exc:
            message = f"{where}: subject {mapping.subject!r} is malformed: {exc}"
            raise MappingError(message) from None
        for _, placeholder, format_spec, conversion in parts:
            if placeholder is None:
                continue
            if placeholder not in fields or format_spec or conversion:
                raise MappingError(
                    f"{where}: subject placeholder {{{placeholder}}} must be a plain event field, "
                    f"one of {', '.join(fields)}"
                )


def compile_mappings(
    abi: Iterable[Mapping[str, Any]],
    mappings: Sequence[EventMapping],
    *,
    base: Path,
    registry: SchemaRegistry | None = None,
) -> CompiledMappings:
    """Check ``mappings`` against ``abi`` and compile them (schemas relative to ``base``).

    Raises :class:`MappingError` for an unknown event or field, a bad type name, a
    schema file missing or not draft-07, a ``$id`` that is no absolute URI.

    Example: ``compile_mappings(deployment.abi, spec.events, base=spec.root)``.
    """
    events: dict[str, EventSpec] = {}
    for entry in abi:
        if entry.get("type") == "event" and not entry.get("anonymous"):
            inputs = entry.get("inputs", ())
            spec = EventSpec(
                name=str(entry["name"]),
                names=tuple(str(p["name"]) for p in inputs),
                types=tuple(canonical_type(p) for p in inputs),
                indexed=tuple(bool(p.get("indexed")) for p in inputs),
            )
            events.setdefault(spec.name, spec)
    schemas = registry if registry is not None else SchemaRegistry()
    compiled: list[CompiledMapping] = []
    seen: set[str] = set()
    for number, mapping in enumerate(mappings, 1):
        where = f"event mapping {number} ({mapping.event})"
        found = events.get(mapping.event)
        if found is None:
            known = ", ".join(sorted(events)) or "none"
            raise MappingError(
                f"{where}: the contract has no event {mapping.event!r}; its events: {known}"
            )
        if mapping.event in seen:
            raise MappingError(f"{where}: event {mapping.event} is mapped twice; keep one mapping")
        seen.add(mapping.event)
        _check_declaration(mapping, found.names, where, chain=True)
        schema = _load(schemas, base, mapping.schema, where)
        compiled.append(CompiledMapping(mapping, schema, found))
    return CompiledMappings(compiled, schemas)


def compile_record_mapping(
    mapping: EventMapping,
    fields: Sequence[str],
    *,
    base: Path,
    registry: SchemaRegistry | None = None,
) -> CompiledMapping:
    """Compile a mapping of records that are not chain events (shadow changes).

    ``fields`` are the record's field names; ``$block`` and friends are refused.

    Example: ``compile_record_mapping(mapping, ("thing", "version"), base=BUILTIN)``.
    """
    where = f"event mapping ({mapping.event})"
    _check_declaration(mapping, fields, where, chain=False)
    schemas = registry if registry is not None else SchemaRegistry()
    return CompiledMapping(mapping, _load(schemas, base, mapping.schema, where), None)


def _load(registry: SchemaRegistry, base: Path, name: str, where: str) -> JsonSchema:
    try:
        return registry.load(base / name)
    except MappingError as exc:
        raise MappingError(f"{where}: {exc}") from None
