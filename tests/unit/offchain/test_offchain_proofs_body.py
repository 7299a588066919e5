"""The hand-written proofs-body codec against eth-abi, the implementation it stands in for.

``encode_rows`` must give eth-abi's bytes for every input; ``decode_rows`` must read
exactly what eth-abi reads from canonical bodies and refuse (``None``) everything else,
so the caller falls back to eth-abi and nothing is accepted that eth-abi would refuse.
"""

from __future__ import annotations

from eth_abi import decode, encode
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.offchain.bodies import _PROOFS as _PROOFS_BODY
from pervasive.offchain.proofs_body import ProofsValues, decode_rows, encode_rows

addresses = st.binary(min_size=20, max_size=20)
words = st.binary(min_size=32, max_size=32)
signatures = st.binary(min_size=0, max_size=70)
rows = st.lists(
    st.tuples(
        addresses,
        words,
        words,
        st.lists(addresses, max_size=4).map(tuple),
        st.lists(signatures, max_size=4).map(tuple),
    ),
    max_size=4,
).map(tuple)
bodies = st.tuples(
    rows,
    st.booleans(),
    st.integers(0, 2**256 - 1),
    st.binary(max_size=100),
    words,
    words,
    words,
    st.lists(addresses, max_size=4).map(tuple),
    st.lists(signatures, max_size=4).map(tuple),
)


def _eth_abi(body: ProofsValues) -> bytes:
    rows_, *rest = body
    as_abi = [[(f"0x{a.hex()}", c, w, [f"0x{s.hex()}" for s in sg], list(sigs))
               for a, c, w, sg, sigs in rows_]]  # fmt: skip
    rest[6] = [f"0x{s.hex()}" for s in rest[6]]
    rest[7] = list(rest[7])
    return encode(_PROOFS_BODY, as_abi + rest)


def _normalised(values: tuple[object, ...]) -> tuple[object, ...]:
    """eth-abi's decoded values in decode_rows' shape (addresses as bytes, tuples)."""
    rows_, *rest = values
    out_rows = tuple(
        (bytes.fromhex(a[2:]), c, w, tuple(bytes.fromhex(s[2:]) for s in sg), tuple(sigs))
        for a, c, w, sg, sigs in rows_  # type: ignore[attr-defined]
    )
    rest[6] = tuple(bytes.fromhex(s[2:]) for s in rest[6])  # type: ignore[attr-defined]
    rest[7] = tuple(rest[7])  # type: ignore[arg-type]
    return (out_rows, *rest)


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_encoding_equals_eth_abi_and_decoding_inverts_it(body: ProofsValues) -> None:
    encoded = encode_rows(body)
    assert encoded == _eth_abi(body)
    assert decode_rows(encoded) == body
    assert _normalised(decode(_PROOFS_BODY, encoded)) == body


@settings(max_examples=300, deadline=None)
@given(bodies, st.data())
def test_a_damaged_body_is_never_read_differently_from_eth_abi(
    body: ProofsValues, data: st.DataObject
) -> None:
    damaged = bytearray(encode_rows(body))
    for _ in range(data.draw(st.integers(1, 3))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] ^= data.draw(st.integers(1, 255))
    fast = decode_rows(bytes(damaged))
    if fast is not None:  # accepted only if it is some body's canonical encoding
        assert encode_rows(fast) == bytes(damaged)
        assert _normalised(decode(_PROOFS_BODY, bytes(damaged))) == fast


def test_truncated_or_padded_bodies_go_to_eth_abi() -> None:
    body: ProofsValues = ((), False, 0, b"", bytes(32), bytes(32), bytes(32), (), ())
    encoded = encode_rows(body)
    assert decode_rows(encoded[:-1]) is None
    assert decode_rows(encoded + bytes(32)) is None
    flagged = bytearray(encoded)
    flagged[63] = 2  # a bool of 2: eth-abi refuses it, so must we
    assert decode_rows(bytes(flagged)) is None
