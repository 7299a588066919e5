"""Devices sign in paper 002's format and read back verified, decoded readings.

The format itself is :mod:`pervasive.sensing.message` (the reference); these
tests check what the device side adds: values decoded as declared, the verdict on
corrupted bytes equal to the reference's, and the claimed key peeked before checking.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pervasive.crypto import PrivateKey, checksum_address
from pervasive.devices import ReadingVerifier, peek_public_key, sign_reading
from pervasive.errors import InvalidInput, InvalidSignature, SchemaViolation
from pervasive.sensing import SensorDeclaration
from pervasive.sensing.message import decode_sensor_message, verify_sensor_message

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
VERIFIER = ReadingVerifier([DECLARATION])

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


def device_verdict(wire: bytes) -> tuple[int, tuple[object, ...]] | type[Exception]:
    try:
        reading = VERIFIER.verify(wire)
        return reading.sequence, reading.values
    except (InvalidInput, InvalidSignature) as exc:
        return InvalidSignature if isinstance(exc, InvalidSignature) else InvalidInput


@settings(max_examples=40, deadline=None)
@given(sequence=st.integers(0, 2**64 - 1), values=values_strategy)
def test_a_signed_reading_reads_back_with_its_values(
    sequence: int, values: dict[str, object]
) -> None:
    wire = sign_reading(KEY, DECLARATION, sequence, values)
    reading = VERIFIER.verify(wire)
    expected = {**values, "who": checksum_address(str(values["who"]))}
    assert reading.sensor == KEY.address
    assert reading.sequence == sequence
    assert reading.values == tuple(expected[name] for name, _ in FIELDS)
    assert peek_public_key(wire) == KEY.public_key.to_bytes()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=values_strategy,
    position=st.integers(0, 2000),
    replacement=st.integers(0, 255),
    cut=st.integers(0, 3),
)
def test_a_corrupted_message_gets_the_reference_verdict(
    values: dict[str, object], position: int, replacement: int, cut: int
) -> None:
    wire = bytearray(sign_reading(KEY, DECLARATION, 42, values))
    wire[position % len(wire)] = replacement
    corrupted = bytes(wire[: len(wire) - cut * 7])
    verdict = device_verdict(corrupted)
    expected = reference_verdict(corrupted)
    if isinstance(expected, tuple):
        assert verdict == expected
    else:  # both refuse; a forged signature is an InvalidSignature in both
        assert not isinstance(verdict, tuple)
        if expected is InvalidSignature:
            assert verdict is InvalidSignature


def test_forged_foreign_and_wrongly_keyed_readings_are_refused() -> None:
    values = {"cell": "c", "time": 1, "delta": 0, "ok": True, "blob": b"", "tag": bytes(32),
              "who": "0x" + "11" * 20, "big": 0}  # fmt: skip
    other = SensorDeclaration.create(OTHER.public_key, "location", FIELDS)
    with pytest.raises(SchemaViolation):
        VERIFIER.verify(sign_reading(OTHER, other, 1, values))  # undeclared sensor
    wire = bytearray(sign_reading(KEY, DECLARATION, 1, values))
    wire[-40] ^= 1  # inside s of the signature: signed by nobody we know
    with pytest.raises(InvalidSignature):
        VERIFIER.verify(bytes(wire))
    with pytest.raises(InvalidInput):
        sign_reading(OTHER, DECLARATION, 1, values)  # the key is not PU_s
    with pytest.raises(SchemaViolation):
        sign_reading(KEY, DECLARATION, 1, {**values, "time": -1})  # not a uint64
    with pytest.raises(InvalidInput):
        peek_public_key(b"\x00" * 100)
    assert KEY.public_key.to_bytes() in VERIFIER
    assert VERIFIER.verify(sign_reading(KEY, DECLARATION, 9, values)).sequence == 9
