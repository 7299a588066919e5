"""The fast codec produces and accepts exactly what the reference implementation does."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pervasive.crypto import PrivateKey
from pervasive.devices import SensorCodec, SensorVerifier
from pervasive.errors import InvalidInput, InvalidSignature, SchemaViolation
from pervasive.offchain.declaration import SensorDeclaration
from pervasive.offchain.sensor_message import (
    decode_sensor_message,
    sign_sensor_message,
    verify_sensor_message,
)

KEY = PrivateKey(bytes(range(1, 33)))
OTHER = PrivateKey(bytes(range(2, 34)))
FIELDS = [
    ("cell", "string"),
    ("time", "uint64"),
    ("delta", "int64"),
    ("ok", "bool"),
    ("blob", "bytes"),
    ("tag", "bytes32"),
    ("who", "address"),
    ("big", "int256"),
]
DECLARATION = SensorDeclaration.create(KEY.public_key, "location", FIELDS)
CODEC = SensorCodec(DECLARATION)

values_strategy = st.fixed_dictionaries(
    {
        "cell": st.text(max_size=40),
        "time": st.integers(0, 2**64 - 1),
        "delta": st.integers(-(2**63), 2**63 - 1),
        "ok": st.booleans(),
        "blob": st.binary(max_size=70),
        "tag": st.binary(min_size=32, max_size=32),
        "who": st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
        "big": st.integers(-(2**255), 2**255 - 1),
    }
)


def reference_verdict(wire: bytes) -> tuple[int, tuple[object, ...]] | type[Exception]:
    try:
        message = decode_sensor_message(wire)
        return message.sequence, verify_sensor_message(message, DECLARATION)
    except (InvalidInput, InvalidSignature) as exc:
        return InvalidSignature if isinstance(exc, InvalidSignature) else InvalidInput


def fast_verdict(wire: bytes) -> tuple[int, tuple[object, ...]] | type[Exception]:
    try:
        reading = CODEC.verify(wire)
        return reading.sequence, reading.values
    except (InvalidInput, InvalidSignature) as exc:
        return InvalidSignature if isinstance(exc, InvalidSignature) else InvalidInput


@settings(max_examples=60, deadline=None)
@given(sequence=st.integers(0, 2**64 - 1), values=values_strategy)
def test_signing_is_byte_identical_to_the_reference(
    sequence: int, values: dict[str, object]
) -> None:
    fast = CODEC.sign(KEY, sequence, values)
    assert fast == sign_sensor_message(KEY, DECLARATION, sequence, values).encode()
    assert fast_verdict(fast) == reference_verdict(fast)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=values_strategy,
    position=st.integers(0, 2000),
    replacement=st.integers(0, 255),
    cut=st.integers(0, 3),
)
def test_a_corrupted_message_gets_the_reference_verdict(
    values: dict[str, object], position: int, replacement: int, cut: int
) -> None:
    wire = bytearray(CODEC.sign(KEY, 42, values))
    wire[position % len(wire)] = replacement
    corrupted = bytes(wire[: len(wire) - cut * 7])
    verdict = fast_verdict(corrupted)
    expected = reference_verdict(corrupted)
    if isinstance(expected, tuple):
        assert verdict == expected
    else:  # both refuse; a forged signature is an InvalidSignature in both
        assert not isinstance(verdict, tuple)
        if expected is InvalidSignature:
            assert verdict is InvalidSignature


def test_forged_and_foreign_messages_are_refused() -> None:
    values = {"cell": "c", "time": 1, "delta": 0, "ok": True, "blob": b"", "tag": bytes(32),
              "who": "0x" + "11" * 20, "big": 0}  # fmt: skip
    other = SensorCodec(SensorDeclaration.create(OTHER.public_key, "location", FIELDS))
    verifier = SensorVerifier([DECLARATION])
    with pytest.raises(SchemaViolation):
        verifier.verify(other.sign(OTHER, 1, values))  # undeclared sensor
    wire = bytearray(CODEC.sign(KEY, 1, values))
    wire[-40] ^= 1  # inside s of the signature: signed by nobody we know
    with pytest.raises(InvalidSignature):
        verifier.verify(bytes(wire))
    with pytest.raises(InvalidInput):
        CODEC.sign(OTHER, 1, values)  # the key is not PU_s
    assert verifier.verify(CODEC.sign(KEY, 9, values)).sequence == 9
