"""Pure JSON operations of a device shadow: merge with ``null`` deletion, delta, metadata.

Paper 004 section 4.8 and 5.6: the shadow keeps a ``desired`` and a ``reported`` state
and publishes the difference (the *delta*) so the device can act on it. The rules
follow the AWS IoT Device Shadow service documents page:

- a field set to ``null`` is deleted; objects left empty vanish;
- objects merge key by key, every other value (arrays included) replaces whole;
- the delta holds every ``desired`` leaf that differs from ``reported``, with its
  full path from the root; keys only in ``reported`` are left out;
- metadata mirrors the state with ``{"timestamp": T}`` per leaf (one per array element).

Nothing here reads a clock or does I/O; ``timestamp`` is always passed in.

Example::

    state, meta = apply_patch({"a": 1}, {}, {"a": None, "b": {"c": 2}}, timestamp=7)
    state == {"b": {"c": 2}}; meta == {"b": {"c": {"timestamp": 7}}}
    compute_delta({"b": {"c": 3}}, state) == {"b": {"c": 3}}
"""

from __future__ import annotations

import copy
import json
from typing import TypeAlias

__all__ = [
    "JsonObject",
    "JsonValue",
    "apply_patch",
    "compute_delta",
    "contains_null_in_array",
    "delta_metadata",
    "json_equal",
    "leaf_metadata",
    "nesting_depth",
    "request_metadata",
    "serialized_size",
]

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
JsonObject: TypeAlias = dict[str, JsonValue]


def json_equal(left: JsonValue, right: JsonValue) -> bool:
    """JSON equality: ``true`` is not ``1``; ``1`` equals ``1.0``; arrays compare whole.

    Example: ``json_equal([1, {"a": True}], [1.0, {"a": True}])`` is ``True``.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(v, right[k]) for k, v in left.items())
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and left == right


def leaf_metadata(value: JsonValue, timestamp: int) -> JsonValue:
    """Metadata of a stored value: a timestamp per leaf, one entry per array element."""
    if isinstance(value, dict):
        return {key: leaf_metadata(item, timestamp) for key, item in value.items()}
    if isinstance(value, list):
        return [leaf_metadata(item, timestamp) for item in value]
    return {"timestamp": timestamp}


def request_metadata(value: JsonValue, timestamp: int) -> JsonValue:
    """Metadata echoed in ``/update/accepted``: it mirrors the request, ``null`` leaves included.

    Example: ``request_metadata({"a": None}, 5) == {"a": {"timestamp": 5}}``.
    """
    return leaf_metadata(value, timestamp)


def apply_patch(
    state: JsonObject, metadata: JsonObject, patch: JsonObject, *, timestamp: int
) -> tuple[JsonObject, JsonObject]:
    """Merge ``patch`` into ``state`` (a section: desired or reported); return new copies.

    ``null`` deletes a key, objects merge recursively, anything else replaces; objects
    left empty are removed. ``metadata`` gets ``timestamp`` on every leaf written.

    Example: ``apply_patch({"a": {"b": 1}}, {}, {"a": {"b": None}}, timestamp=1)`` → ``({}, {})``.
    """
    new_state = copy.deepcopy(state)
    new_metadata = copy.deepcopy(metadata)
    _merge(new_state, new_metadata, patch, timestamp)
    return new_state, new_metadata


def _merge(state: JsonObject, metadata: JsonObject, patch: JsonObject, timestamp: int) -> None:
    for key, value in patch.items():
        if value is None:
            state.pop(key, None)
            metadata.pop(key, None)
        elif isinstance(value, dict):
            child, child_meta = state.get(key), metadata.get(key)
            if not isinstance(child, dict):
                child, child_meta = {}, {}
            elif not isinstance(child_meta, dict):
                child_meta = {}
            _merge(child, child_meta, value, timestamp)
            if child:
                state[key] = child
                metadata[key] = child_meta
            else:
                state.pop(key, None)
                metadata.pop(key, None)
        else:
            state[key] = copy.deepcopy(value)
            metadata[key] = leaf_metadata(value, timestamp)


def compute_delta(desired: JsonObject, reported: JsonObject) -> JsonObject:
    """Every ``desired`` leaf whose value differs from ``reported``, keeping its full path.

    Keys only in ``reported`` are excluded; keys only in ``desired`` are included.
    Arrays are values: a differing array is copied whole.

    Example: ``compute_delta({"l": {"r": 1, "g": 2}}, {"l": {"r": 1, "g": 0}}) == {"l": {"g": 2}}``.
    """
    delta: JsonObject = {}
    for key, wanted in desired.items():
        actual = reported.get(key)
        if isinstance(wanted, dict) and isinstance(actual, dict):
            nested = compute_delta(wanted, actual)
            if nested:
                delta[key] = nested
        elif key not in reported or not json_equal(wanted, actual):
            delta[key] = copy.deepcopy(wanted)
    return delta


def delta_metadata(delta: JsonObject, desired_metadata: JsonObject) -> JsonObject:
    """The metadata of a delta: the ``desired`` metadata of each of its entries."""
    result: JsonObject = {}
    for key, value in delta.items():
        meta = desired_metadata.get(key)
        if isinstance(value, dict) and isinstance(meta, dict):
            result[key] = delta_metadata(value, meta)
        elif meta is not None:
            result[key] = copy.deepcopy(meta)
    return result


def nesting_depth(value: JsonValue) -> int:
    """Levels of objects and arrays: a scalar is 0, ``{}`` is 1, ``{"a": {}}`` is 2.

    Example: ``nesting_depth({"a": [1, {"b": 2}]}) == 3``.
    """
    depth = 0
    stack: list[tuple[JsonValue, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            depth = max(depth, level)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            depth = max(depth, level)
            stack.extend((child, level + 1) for child in item)
    return depth


def serialized_size(value: JsonValue) -> int:
    """Bytes of the compact UTF-8 JSON encoding (what counts against the size limit)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def contains_null_in_array(value: JsonValue, *, inside_array: bool = False) -> bool:
    """Whether an array anywhere in ``value`` holds ``null`` (shadows reject that)."""
    if value is None:
        return inside_array
    if isinstance(value, dict):
        return any(contains_null_in_array(v, inside_array=False) for v in value.values())
    if isinstance(value, list):
        return any(contains_null_in_array(v, inside_array=True) for v in value)
    return False
