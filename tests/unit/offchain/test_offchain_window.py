"""Window arithmetic, the window builder and window hashes (paper 002, section 3)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from offchain_harness import declaration, make_spec, trace

from pervasive.crypto import keccak256
from pervasive.errors import InvalidInput, SchemaViolation
from pervasive.offchain import WindowBuilder, WindowSpec, sliding_windows, window
from pervasive.offchain.window import MISSING_LEAF, decode_window_array

specs = st.builds(
    lambda q0, sl, z: WindowSpec(("0x" + "11" * 20,), (q0,), sl, z),
    st.integers(0, 50),
    st.integers(1, 6),
    st.integers(1, 6),
)


def test_window_definitions() -> None:
    assert window(5, 3) == range(5, 8)
    stream = sliding_windows(2, 3, 4)
    assert [next(stream) for _ in range(3)] == [range(2, 6), range(5, 9), range(8, 12)]
    with pytest.raises(InvalidInput):
        window(0, 0)
    with pytest.raises(InvalidInput):
        next(sliding_windows(0, 0, 1))


@settings(max_examples=100, deadline=None)
@given(spec=specs, q=st.integers(0, 200))
def test_windows_containing_agrees_with_definition(spec: WindowSpec, q: int) -> None:
    brute = [t for t in range(0, 250) if q in spec.range_of(0, t)]
    assert list(spec.windows_containing(0, q)) == brute


@settings(max_examples=100, deadline=None)
@given(spec=specs, t=st.integers(0, 100))
def test_w_s_of_t_is_w_of_q0_plus_t_sl(spec: WindowSpec, t: int) -> None:
    q0, sl, z = spec.start_points[0], spec.sliding, spec.size
    assert spec.range_of(0, t) == window(q0 + t * sl, z)


@settings(max_examples=30, deadline=None)
@given(sl=st.integers(1, 4), z=st.integers(1, 4), seed=st.integers(0, 2**32))
def test_builder_is_order_independent(sl: int, z: int, seed: int) -> None:
    spec = make_spec(2, sensors=2, sliding=sl, size=z)
    messages = trace(0, 12) + trace(1, 12)
    in_order = WindowBuilder(spec.window)
    expected = [w for m in messages for w in in_order.add(m)]
    shuffled = list(messages)
    random.Random(seed).shuffle(shuffled)
    builder = WindowBuilder(spec.window)
    got = [w for m in shuffled for w in builder.add(m)]
    assert [w.t for w in got] == list(range(len(got)))
    assert [w.hash for w in got] == [w.hash for w in expected]
    assert all(w.complete for w in got)
    assert len(got) == (12 - z) // sl + 1


def test_window_hash_is_keccak_of_leaves() -> None:
    spec = make_spec(2, sensors=2, size=2, sliding=2)
    builder = WindowBuilder(spec.window)
    out = [w for m in trace(0, 2) + trace(1, 2) for w in builder.add(m)]
    [w] = out
    per_sensor = [keccak256(b"".join(m.struct_hash for m in sw.messages if m)) for sw in w.windows]
    assert w.hash == keccak256(b"".join(per_sensor))
    assert decode_window_array(w.encode(), spec.window) == w


def test_missing_message_closes_window_with_a_different_hash() -> None:
    spec = make_spec(2, size=3, sliding=3)
    messages = trace(0, 3)
    full = WindowBuilder(spec.window)
    [complete] = [w for m in messages for w in full.add(m)]
    partial = WindowBuilder(spec.window)
    assert partial.add(messages[0]) == [] and partial.add(messages[2]) == []
    [holey] = partial.mark_missing(messages[0].sensor, [1])
    assert not holey.complete and holey.windows[0].missing == (1,)
    assert holey.hash != complete.hash
    leaves = [messages[0].struct_hash, MISSING_LEAF, messages[2].struct_hash]
    assert holey.windows[0].hash == keccak256(b"".join(leaves))
    assert decode_window_array(holey.encode(), spec.window).hash == holey.hash


def test_builder_rejects_foreign_sensor_and_bad_spec() -> None:
    spec = make_spec(2)
    with pytest.raises(SchemaViolation):
        WindowBuilder(spec.window).add(trace(1, 1)[0])
    with pytest.raises(InvalidInput):
        WindowSpec((declaration(0).address,), (0, 1), 1, 1)
    with pytest.raises(InvalidInput):
        WindowSpec((declaration(0).address,), (0,), 0, 1)


def test_decode_rejects_window_of_other_shape() -> None:
    spec = make_spec(2, size=3, sliding=3)
    other = make_spec(2, size=2, sliding=2)
    builder = WindowBuilder(spec.window)
    [w] = [x for m in trace(0, 3) for x in builder.add(m)]
    with pytest.raises(InvalidInput):
        decode_window_array(w.encode(), other.window)
