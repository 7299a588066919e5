"""Sensor declarations, signed sensor messages, sequence tracking (paper 002, section 3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from offchain_harness import SENSOR_KEYS, declaration, trace

from pervasive.crypto import PrivateKey
from pervasive.domain import FieldType
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage, SchemaViolation
from pervasive.sensing import (
    GapEvent,
    SensorDeclaration,
    SensorInbox,
    SensorMessage,
    SequenceTracker,
    decode_sensor_message,
    sign_sensor_message,
    verify_sensor_message,
)

ALL_TYPES = [(t.value.replace("int", "i_nt"), t.value) for t in FieldType]


def full_declaration() -> SensorDeclaration:
    return SensorDeclaration.create(SENSOR_KEYS[0].public_key, "everything", ALL_TYPES)


values_strategy = st.tuples(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(-(2**255), 2**255 - 1),
    st.integers(0, 2**256 - 1),
    st.text(max_size=40),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    st.binary(max_size=80),
)


@settings(max_examples=40, deadline=None)
@given(values=values_strategy, q=st.integers(0, 2**64 - 1))
def test_sensor_message_round_trip(values: tuple, q: int) -> None:
    decl = full_declaration()
    message = sign_sensor_message(SENSOR_KEYS[0], decl, q, list(values))
    wire = message.encode()
    again = decode_sensor_message(wire)
    assert again == message
    decoded = verify_sensor_message(again, decl)
    assert decoded[:7] + decoded[8:] == values[:7] + values[8:]
    assert decoded[7].lower() == values[7]  # the address comes back checksummed


@settings(max_examples=40, deadline=None)
@given(q=st.integers(0, 1000), flip=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_bit_flip_is_rejected(q: int, flip: int, bit: int) -> None:
    decl = declaration(0)
    wire = bytearray(sign_sensor_message(SENSOR_KEYS[0], decl, q, ["x", 5]).encode())
    wire[flip % len(wire)] ^= 1 << bit
    with pytest.raises((InvalidInput, SchemaViolation, InvalidSignature)):
        verify_sensor_message(decode_sensor_message(bytes(wire)), decl)


def test_unknown_field_type_and_bad_names() -> None:
    with pytest.raises(InvalidInput, match="float"):
        SensorDeclaration.create(SENSOR_KEYS[0].public_key, "t", [("x", "float")])
    with pytest.raises(InvalidInput):
        SensorDeclaration.create(SENSOR_KEYS[0].public_key, "t", [("x", "bool"), ("x", "bool")])
    with pytest.raises(InvalidInput):
        SensorDeclaration.create(SENSOR_KEYS[0].public_key, "t", [("1x", "bool")])


@pytest.mark.parametrize(
    "values",
    [
        ["x"],
        ["x", 1, 2],
        [5, 1],
        ["x", True],
        ["x", 2**63],
        {"label": "x"},
        {"label": "x", "reading": 1, "z": 2},
    ],
)
def test_schema_violation_on_sign(values) -> None:
    with pytest.raises(SchemaViolation):
        sign_sensor_message(SENSOR_KEYS[0], declaration(0), 0, values)


def test_forged_sensor_message_is_invalid_signature() -> None:
    decl = declaration(0)
    genuine = sign_sensor_message(SENSOR_KEYS[0], decl, 3, ["x", 5])
    forger = PrivateKey(b"\x99" * 32)
    other_decl = SensorDeclaration(forger.public_key, decl.sensor_type, decl.fields)
    forged_sig = sign_sensor_message(forger, other_decl, 3, ["x", 500]).signature
    forged = SensorMessage(
        genuine.public_key, genuine.sensor_type, 3, decl.encode_values(["x", 500]), forged_sig
    )
    with pytest.raises(InvalidSignature, match=decl.address):
        verify_sensor_message(forged, decl)


def test_message_of_other_kind_or_key_is_schema_violation() -> None:
    decl = declaration(0)
    message = sign_sensor_message(SENSOR_KEYS[0], decl, 0, ["x", 1])
    with pytest.raises(SchemaViolation):
        verify_sensor_message(message, declaration(1))
    relabelled = SensorDeclaration(decl.public_key, "thermometer", decl.fields)
    with pytest.raises(SchemaViolation):
        verify_sensor_message(message, relabelled)


def test_values_that_do_not_decode_are_schema_violation() -> None:
    decl = declaration(0)
    good = sign_sensor_message(SENSOR_KEYS[0], decl, 0, ["x", 1])
    bad = SensorMessage(good.public_key, good.sensor_type, 0, b"\x01" * 31, good.signature)
    with pytest.raises(SchemaViolation):
        verify_sensor_message(bad, decl)


def test_tracker_replays_gaps_and_late_messages() -> None:
    m = trace(0, 6)
    sensor = m[0].sensor
    tracker = SequenceTracker({sensor: 1}, gap_timeout=5.0)
    assert tracker.accept(m[0], 0.0) == []  # below the start point q_{s,0}
    assert tracker.accept(m[1], 0.0) == [m[1]]
    with pytest.raises(ReplayedMessage):
        tracker.accept(m[1], 0.5)
    assert tracker.accept(m[3], 1.0) == []  # m2 missing: held
    with pytest.raises(ReplayedMessage):
        tracker.accept(m[3], 1.5)
    assert tracker.expire(5.9) == ([], [])
    assert tracker.expire(6.0) == ([GapEvent(sensor, 2, 2)], [m[3]])
    assert tracker.accept(m[2], 7.0) == []  # late: its gap was reported
    assert tracker.late == 1 and tracker.before_start == 1
    assert tracker.accept(m[4], 7.0) == [m[4]]
    with pytest.raises(SchemaViolation):
        tracker.accept(trace(1, 1)[0], 0.0)


def test_gap_filled_in_time_is_not_reported() -> None:
    m = trace(0, 3)
    tracker = SequenceTracker({m[0].sensor: 0}, gap_timeout=5.0)
    tracker.accept(m[0], 0.0)
    tracker.accept(m[2], 0.0)
    assert tracker.accept(m[1], 4.0) == [m[1], m[2]]
    assert tracker.expire(100.0) == ([], [])


@settings(max_examples=40, deadline=None)
@given(order=st.permutations(list(range(8))))
def test_tracker_delivers_every_message_once_in_order(order: list[int]) -> None:
    m = trace(0, 8)
    tracker = SequenceTracker({m[0].sensor: 0}, gap_timeout=5.0)
    delivered = []
    for i in order:
        delivered += tracker.accept(m[i], 0.0)
    assert delivered == m


def test_inbox_counts_rejections() -> None:
    decl = declaration(0)
    inbox = SensorInbox([decl], {decl.address: 0}, gap_timeout=5.0)
    m = trace(0, 2)
    assert inbox.receive(m[0].encode(), 0.0).delivered == (m[0],)
    with pytest.raises(ReplayedMessage):
        inbox.receive(m[0], 0.0)
    with pytest.raises(SchemaViolation):
        inbox.receive(trace(1, 1)[0], 0.0)  # undeclared sensor
    forged = SensorMessage(m[1].public_key, m[1].sensor_type, 1, m[1].values, m[0].signature)
    with pytest.raises(InvalidSignature):
        inbox.receive(forged, 0.0)
    with pytest.raises(InvalidInput):
        inbox.receive(b"garbage", 0.0)
    assert inbox.receive(m[1], 0.0).delivered == (m[1],)
    assert dict(inbox.rejections) == {"replay": 1, "schema": 1, "signature": 1, "malformed": 1}
    assert inbox.accepted == 2
