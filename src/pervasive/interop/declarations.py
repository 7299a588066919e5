"""Mapping declarations as data: TOML files of ``[[events]]`` tables, and the built-in ones.

The built-in declarations live in ``builtin/`` beside this module (package data):
``agreement.toml`` (DIVERSITY window updates and disputes of ``agreement.vy``),
``sale_order_factory.toml`` (sale orders created, sold, released) and ``shadow.toml``
(shadow changes from ``ShadowService.add_listener``). Their schemas are in ``schemas/``.
A service spec declares its own mappings in the same shape (``[[events]]``).

Example::

    compiled = compile_builtin("sale_order_factory", compile_contract("sale_order_factory").abi)
    load_mappings(Path("my-events.toml"))   # [EventMapping(...), ...]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from pervasive.interop.errors import MappingError
from pervasive.interop.mapping import (
    CompiledMapping,
    CompiledMappings,
    EventMapping,
    compile_mappings,
    compile_record_mapping,
)
from pervasive.interop.schemas import SchemaRegistry

__all__ = [
    "BUILTIN",
    "BUILTIN_NAMES",
    "SHADOW_FIELDS",
    "builtin_mappings",
    "compile_builtin",
    "compile_shadow_mapping",
    "load_mappings",
]

BUILTIN = Path(__file__).parent / "builtin"
"""The folder of the built-in declarations."""
BUILTIN_NAMES = ("agreement", "sale_order_factory", "shadow")
"""The built-in declaration files (the first two name the contract they map)."""
SHADOW_FIELDS = ("thing", "shadow", "version", "exists", "desired", "reported", "updated_at")
"""The fields a shadow-change mapping may use."""


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    events: list[EventMapping] = []


def load_mappings(path: Path) -> list[EventMapping]:
    """The ``[[events]]`` tables of the TOML file at ``path``.

    Example: ``load_mappings(BUILTIN / "agreement.toml")[0].event`` == ``"Updated"``.
    """
    try:
        return list(msgspec.toml.decode(path.read_bytes(), type=_File).events)
    except FileNotFoundError:
        raise MappingError(f"mapping file {path} does not exist") from None
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MappingError(f"mapping file {path}: {exc}; see docs/interop.md") from None


def builtin_mappings(name: str) -> list[EventMapping]:
    """The built-in declarations ``name`` (one of :data:`BUILTIN_NAMES`).

    Example: ``[m.type for m in builtin_mappings("sale_order_factory")]``.
    """
    if name not in BUILTIN_NAMES:
        raise MappingError(f"no built-in mappings {name!r}; use one of {', '.join(BUILTIN_NAMES)}")
    return load_mappings(BUILTIN / f"{name}.toml")


def compile_builtin(
    name: str, abi: Iterable[Mapping[str, Any]], *, registry: SchemaRegistry | None = None
) -> CompiledMappings:
    """The built-in mappings ``name`` compiled against the contract's ``abi``.

    Example: ``compile_builtin("agreement", compile_contract("agreement").abi)``.
    """
    return compile_mappings(abi, builtin_mappings(name), base=BUILTIN, registry=registry)


def compile_shadow_mapping(*, registry: SchemaRegistry | None = None) -> CompiledMapping:
    """The built-in shadow-change mapping, compiled.

    Example: ``compile_shadow_mapping().type`` == ``"dev.pervasive.shadow.changed"``.
    """
    [mapping] = builtin_mappings("shadow")
    return compile_record_mapping(mapping, SHADOW_FIELDS, base=BUILTIN, registry=registry)
