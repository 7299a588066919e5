"""Merge, null deletion, delta and metadata: AWS examples plus hypothesis invariants."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.shadow.document import (
    JsonObject,
    apply_patch,
    compute_delta,
    delta_metadata,
    json_equal,
    nesting_depth,
)

KEYS = st.sampled_from(["a", "b", "c", "color", "door"])
SCALARS = st.one_of(
    st.booleans(), st.integers(-5, 5), st.sampled_from(["RED", "GREEN", "open"]), st.floats(0, 2)
)
VALUES = st.recursive(
    SCALARS | st.lists(SCALARS, max_size=3),
    lambda children: st.dictionaries(KEYS, children, max_size=3),
    max_leaves=8,
)
# a stored section: no nulls, no empty objects (the store never keeps them)
STATES = st.dictionaries(KEYS, VALUES, max_size=4).map(
    lambda d: apply_patch({}, {}, d, timestamp=0)[0]
)
PATCH_VALUES = st.recursive(
    st.none() | SCALARS | st.lists(SCALARS, max_size=3),
    lambda children: st.dictionaries(KEYS, children, max_size=3),
    max_leaves=8,
)
PATCHES = st.dictionaries(KEYS, PATCH_VALUES, max_size=4)


def leaves(value: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Path → leaf for a nested object (arrays and empty objects are leaves)."""
    if isinstance(value, dict) and (value or not path):
        result: dict[tuple[str, ...], Any] = {}
        for key, item in value.items():
            result.update(leaves(item, (*path, key)))
        return result
    return {path: value}


def no_nulls_or_empty_objects(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value) and all(no_nulls_or_empty_objects(v) for v in value.values())
    return value is not None


def same_shape(state: Any, metadata: Any) -> bool:
    """Metadata mirrors the state: a {"timestamp": t} per leaf, one per array element."""
    if isinstance(state, dict):
        return (
            isinstance(metadata, dict)
            and state.keys() == metadata.keys()
            and all(same_shape(state[k], metadata[k]) for k in state)
        )
    if isinstance(state, list):
        return (
            isinstance(metadata, list)
            and len(state) == len(metadata)
            and all(map(same_shape, state, metadata))
        )
    return isinstance(metadata, dict) and set(metadata) == {"timestamp"}


def test_aws_delta_examples() -> None:
    desired = {"color": "RED", "state": "STOP"}
    reported = {"color": "GREEN", "engine": "ON"}
    assert compute_delta(desired, reported) == {"color": "RED", "state": "STOP"}
    desired_n = {"lights": {"color": {"r": 255, "g": 255, "b": 255}}}
    reported_n = {"lights": {"color": {"r": 255, "g": 0, "b": 255}}}
    assert compute_delta(desired_n, reported_n) == {"lights": {"color": {"g": 255}}}
    assert compute_delta({"colors": ["RED"]}, {"colors": ["RED", "GREEN"]}) == {"colors": ["RED"]}
    assert compute_delta({"on": True}, {"on": 1}) == {"on": True}
    assert compute_delta({"level": 1}, {"level": 1.0}) == {}


def test_null_deletes_and_empty_objects_vanish() -> None:
    state, meta = apply_patch(
        {"a": {"b": 1, "c": 2}, "d": 3}, {}, {"a": {"b": None}, "d": None}, timestamp=4
    )
    assert state == {"a": {"c": 2}}
    state, meta = apply_patch(state, meta, {"a": {"c": None}}, timestamp=5)
    assert state == {} and meta == {}


def test_arrays_replace_whole_with_per_element_metadata() -> None:
    state, meta = apply_patch(
        {"colors": ["RED", "GREEN", "BLUE"]}, {}, {"colors": ["RED"]}, timestamp=9
    )
    assert state == {"colors": ["RED"]}
    assert meta == {"colors": [{"timestamp": 9}]}


def test_nesting_depth_counts_the_section_itself() -> None:
    five_below = {"one": {"two": {"three": {"four": {"five": {}}}}}}
    assert nesting_depth(five_below) == 6
    assert nesting_depth(1) == 0
    assert nesting_depth({"a": [1, {"b": 2}]}) == 3


@settings(deadline=None)
@given(STATES, PATCHES)
def test_merge_writes_every_patched_leaf_and_keeps_the_rest(
    state: JsonObject, patch: JsonObject
) -> None:
    merged, _ = apply_patch(state, {}, patch, timestamp=1)
    assert no_nulls_or_empty_objects(merged) or merged == {}
    merged_leaves = leaves(merged)
    for path, value in leaves(patch).items():
        if value is None:
            assert not any(p[: len(path)] == path for p in merged_leaves)
        elif value != {}:
            assert json_equal(merged_leaves[path], value)
    patched = leaves(patch)
    for path, value in leaves(state).items():
        touched = any(path[: len(p)] == p or p[: len(path)] == path for p in patched)
        if not touched:
            assert json_equal(merged_leaves[path], value)


@settings(deadline=None)
@given(STATES, PATCHES)
def test_merge_is_idempotent_and_metadata_mirrors_state(
    state: JsonObject, patch: JsonObject
) -> None:
    stamped_state, stamped_meta = apply_patch({}, {}, state, timestamp=0)
    once, meta_once = apply_patch(stamped_state, stamped_meta, patch, timestamp=1)
    twice, meta_twice = apply_patch(once, meta_once, patch, timestamp=2)
    assert once == twice
    assert same_shape(once, meta_once)
    assert same_shape(twice, meta_twice)


@settings(deadline=None)
@given(STATES, STATES)
def test_delta_is_exactly_the_desired_leaves_reported_lacks(
    desired: JsonObject, reported: JsonObject
) -> None:
    delta = compute_delta(desired, reported)
    desired_leaves, reported_leaves, delta_leaves = leaves(desired), leaves(reported), leaves(delta)
    for path, value in delta_leaves.items():
        assert json_equal(desired_leaves[path], value)
    for path, value in desired_leaves.items():
        in_sync = path in reported_leaves and json_equal(reported_leaves[path], value)
        assert (path not in delta_leaves) == in_sync
    # keys only in reported never show up
    assert set(delta) <= set(desired)


@settings(deadline=None)
@given(STATES, STATES)
def test_reporting_the_delta_resolves_it(desired: JsonObject, reported: JsonObject) -> None:
    delta = compute_delta(desired, reported)
    new_reported, _ = apply_patch(reported, {}, delta, timestamp=3)
    assert compute_delta(desired, new_reported) == {}


@settings(deadline=None)
@given(STATES, STATES)
def test_delta_metadata_is_the_desired_metadata(desired: JsonObject, reported: JsonObject) -> None:
    stamped, metadata = apply_patch({}, {}, desired, timestamp=42)
    delta = compute_delta(stamped, reported)
    assert same_shape(delta, delta_metadata(delta, metadata)) or delta == {}
