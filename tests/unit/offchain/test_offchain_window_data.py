"""Packed window data of on-chain proof of storage (``offchain.window_data``) against windows."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.crypto import PrivateKey
from pervasive.errors import InvalidInput, InvalidSignature
from pervasive.offchain import WindowArray
from pervasive.offchain.window import SensorWindow
from pervasive.offchain.window_data import PackedMessage, SensorWindowData, WindowData
from pervasive.sensing import SensorDeclaration, sign_sensor_message

KEYS = [PrivateKey(bytes([0x31 + i]) * 32) for i in range(2)]
FIELDS = [
    ("unlocked", "bool"), ("time", "uint64"), ("delta", "int64"), ("token", "string"),
    ("blob", "bytes"), ("tag", "bytes32"), ("owner", "address"), ("big", "int256"),
    ("total", "uint256"),
]  # fmt: skip
DECLARATIONS = [
    SensorDeclaration.create(k.public_key, f"lock{i}", FIELDS) for i, k in enumerate(KEYS)
]

values = st.tuples(
    st.booleans(),
    st.integers(0, 2**64 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.binary(min_size=32, max_size=32),
    st.sampled_from([k.address for k in KEYS]),
    st.integers(-(2**255), 2**255 - 1),
    st.integers(0, 2**256 - 1),
)


def as_data(array: WindowArray) -> WindowData:
    """What a node does: its offchain window, packed for calldata."""
    return WindowData.from_windows(array, reversed(DECLARATIONS))


@st.composite
def arrays(draw: st.DrawFn) -> WindowArray:
    windows = []
    for key, declaration in zip(KEYS, DECLARATIONS, strict=True):
        start = draw(st.integers(0, 2**40))
        count = draw(st.integers(1, 9))
        messages = []
        for q in range(start, start + count):
            if draw(st.booleans()) and count > 1:
                messages.append(None)  # a gap every node missed
            else:
                messages.append(sign_sensor_message(key, declaration, q, list(draw(values))))
        windows.append(SensorWindow(declaration.address, start, tuple(messages)))
    return WindowArray(draw(st.integers(0, 100)), tuple(windows))


HONEST = [True, 1, -1, "t", b"", bytes(32), KEYS[0].address, 0, 0]


def test_a_window_of_an_undeclared_sensor_is_refused() -> None:
    message = sign_sensor_message(KEYS[0], DECLARATIONS[0], 0, HONEST)
    array = WindowArray(0, (SensorWindow(DECLARATIONS[0].address, 0, (message,)),))
    with pytest.raises(InvalidInput, match="no declaration"):
        WindowData.from_windows(array, DECLARATIONS[1:])


@settings(max_examples=40, deadline=None)
@given(arrays())
def test_decoding_reproduces_window_hash_and_signatures(array: WindowArray) -> None:
    data = as_data(array)
    decoded = WindowData.decode(data.encode())
    assert decoded == data
    assert decoded.hash == array.hash
    decoded.verify_signatures()


def test_a_tampered_value_breaks_the_sensor_signature() -> None:
    declaration = DECLARATIONS[0]
    message = sign_sensor_message(KEYS[0], declaration, 5, HONEST)
    forged_values = declaration.encode_values([False, *HONEST[1:]])
    sensor = SensorWindowData(
        declaration.public_key.to_bytes(), declaration.sensor_type, declaration.abi_types, 5,
        (PackedMessage(forged_values, message.signature.to_bytes()),),
    )  # fmt: skip
    with pytest.raises(InvalidSignature):
        WindowData.decode(WindowData((sensor,)).encode()).verify_signatures()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decoder_accepts_only_canonical_encodings(raw: bytes) -> None:
    try:
        decoded = WindowData.decode(raw)
    except InvalidInput:
        return
    assert decoded.encode() == raw


@settings(max_examples=100, deadline=None)
@given(arrays(), st.data())
def test_truncated_or_extended_data_is_refused(array: WindowArray, data: st.DataObject) -> None:
    encoded = as_data(array).encode()
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(InvalidInput):
        WindowData.decode(encoded[:cut])
    with pytest.raises(InvalidInput):
        WindowData.decode(encoded + b"\x00")
