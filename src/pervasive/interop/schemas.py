"""JSON Schemas of CloudEvent ``data``: loaded, checked as draft-07, compiled once.

A mapping's ``schema`` names a JSON file; its ``$id`` (an absolute URI such as
``urn:pervasive:schema:logistics:cost-quoted:1``) becomes the CloudEvent's
``dataschema``. The file must itself be a valid draft-07 schema (checked against the
draft-07 meta-schema shipped beside this module), and is compiled with fastjsonschema
once, so validating an event costs a few microseconds. A :class:`SchemaRegistry` keeps
every loaded schema by ``$id`` for ``GET /schemas?id=`` of the web app.

Example::

    schema = load_schema(Path("schemas/cost-quoted.json"))
    schema.id                       # 'urn:pervasive:schema:logistics:cost-quoted:1'
    schema.validate({"shipment": "s-1", "cost": 40})
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastjsonschema

from pervasive.interop.errors import MappingError

__all__ = ["BUILTIN_SCHEMAS", "JsonSchema", "SchemaRegistry", "is_absolute_uri", "load_schema"]

BUILTIN_SCHEMAS = Path(__file__).parent / "schemas"
"""The folder of the built-in schemas (and the draft-07 meta-schema)."""

_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s#]+#?$")


def is_absolute_uri(text: str) -> bool:
    """Whether ``text`` is an absolute URI (RFC 3986: a scheme, then something; no fragment).

    Example: ``is_absolute_uri("urn:pervasive:schema:x:1")`` is True, ``"x.json"`` is not.
    """
    return bool(_ABSOLUTE_URI.match(text))


@functools.cache
def _meta_validator() -> Callable[[Any], Any]:
    document = json.loads((BUILTIN_SCHEMAS / "draft-07.json").read_text())
    return fastjsonschema.compile(document)


@dataclass(frozen=True)
class JsonSchema:
    """A loaded, checked and compiled JSON Schema."""

    id: str
    """Its ``$id``: the CloudEvent's ``dataschema``."""
    document: Mapping[str, Any]
    """The schema as read from its file."""
    path: Path
    _validator: Callable[[Any], Any] = field(repr=False, compare=False)

    def validate(self, data: Any) -> None:
        """Raise ``fastjsonschema.JsonSchemaValueException`` when ``data`` does not match."""
        self._validator(data)

    @property
    def text(self) -> str:
        """The schema as JSON text (what ``GET /schemas?id=`` answers)."""
        return json.dumps(self.document, indent=2, ensure_ascii=False)


def load_schema(path: Path) -> JsonSchema:
    """Read, check (draft-07, absolute ``$id``) and compile the schema file at ``path``.

    Raises :class:`MappingError` naming the file and what to fix.

    Example: ``load_schema(BUILTIN_SCHEMAS / "retracted.json").id``.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        message = f"schema file {path} does not exist: check the mapping's schema"
        raise MappingError(message) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MappingError(f"schema file {path} is not readable JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MappingError(f"schema file {path} must hold a JSON object (a draft-07 schema)")
    try:
        _meta_validator()(document)
    except fastjsonschema.JsonSchemaException as exc:
        message = getattr(exc, "message", str(exc))
        text = f"schema file {path} is not a valid draft-07 schema: {message}"
        raise MappingError(text) from None
    declared = document.get("$schema")
    if declared is not None and "draft-07" not in str(declared):
        raise MappingError(
            f"schema file {path} declares $schema {declared!r}: write draft-07 "
            '("http://json-schema.org/draft-07/schema#")'
        )
    schema_id = document.get("$id")
    if not isinstance(schema_id, str) or not is_absolute_uri(schema_id):
        raise MappingError(
            f"schema file {path} needs an absolute URI as $id (it becomes dataschema), e.g. "
            f'"urn:pervasive:schema:<area>:<name>:1"; found {schema_id!r}'
        )
    try:
        validator = fastjsonschema.compile(document)
    except (fastjsonschema.JsonSchemaDefinitionException, ValueError) as exc:
        raise MappingError(f"schema file {path} cannot be compiled: {exc}") from None
    return JsonSchema(id=schema_id.rstrip("#"), document=document, path=path, _validator=validator)


class SchemaRegistry(Mapping[str, JsonSchema]):
    """Loaded schemas by ``$id``; a file is read once however many mappings name it.

    Example::

        registry = SchemaRegistry()
        schema = registry.load(spec.root / "schemas/cost-quoted.json")
        registry[schema.id] is schema
    """

    def __init__(self) -> None:
        self._by_id: dict[str, JsonSchema] = {}
        self._by_path: dict[Path, JsonSchema] = {}

    def load(self, path: Path) -> JsonSchema:
        """The schema at ``path`` (loaded on first use); two files with one ``$id`` refused."""
        resolved = path.resolve()
        known = self._by_path.get(resolved)
        if known is not None:
            return known
        schema = load_schema(resolved)
        other = self._by_id.get(schema.id)
        if other is not None and other.document != schema.document:
            raise MappingError(
                f"schema files {other.path} and {resolved} both claim $id {schema.id!r}: "
                "give the changed schema a new $id (e.g. bump its version)"
            )
        self._by_id[schema.id] = schema
        self._by_path[resolved] = schema
        return schema

    def add(self, other: SchemaRegistry) -> None:
        """Take every schema of ``other`` (the web app serves all feeds' schemas)."""
        for schema in other._by_path.values():
            self._by_path.setdefault(schema.path, schema)
            self._by_id.setdefault(schema.id, schema)

    def __getitem__(self, schema_id: str) -> JsonSchema:
        return self._by_id[schema_id.rstrip("#")]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)
