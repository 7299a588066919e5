"""The fast ABI decoder against eth-abi: the same values, the same refusals.

``decode_values`` and ``EventSpec.decode`` read static words and ``string``/``bytes``
directly and leave everything else to eth-abi; here both are compared with eth-abi's
strict decoder itself (addresses checksummed by eth-utils), on random values of random
types, on damaged encodings and on random bytes.
"""

from __future__ import annotations

from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.chain import Log
from pervasive.contracts.contract import EventSpec, decode_values
from pervasive.crypto import keccak256
from pervasive.errors import InternalError

CONTRACT = "0x" + "11" * 20


def _value(kind: str) -> st.SearchStrategy[Any]:
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
    if kind == "bool":
        return st.booleans()
    if kind == "string":
        return st.text(max_size=70)
    if kind == "bytes":
        return st.binary(max_size=70)
    if kind.startswith("uint"):
        return st.integers(0, (1 << int(kind[4:])) - 1)
    if kind.startswith("int"):
        bits = int(kind[3:])
        return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    size = int(kind[5:])
    return st.binary(min_size=size, max_size=size)


KINDS = st.one_of(
    st.sampled_from(["address", "bool", "string", "bytes", "uint256", "int256"]),
    st.integers(1, 32).map(lambda n: f"uint{8 * n}"),
    st.integers(1, 32).map(lambda n: f"int{8 * n}"),
    st.integers(1, 32).map(lambda n: f"bytes{n}"),
)


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[list[str], list[Any]]:
    kinds = draw(st.lists(KINDS, max_size=6))
    return kinds, [draw(_value(kind)) for kind in kinds]


def reference(kinds: list[str], data: bytes) -> tuple[Any, ...]:
    """eth-abi's strict decode, addresses in EIP-55 form."""
    values = decode(kinds, data, strict=True)
    return tuple(
        to_checksum_address(v) if k == "address" else v for k, v in zip(kinds, values, strict=True)
    )


def typed(values: Any) -> list[tuple[type, Any]]:
    """Values with their types (``True == 1`` would hide a bool decoded as an int)."""
    return [(type(v), v) for v in values]


def outcome(decoder: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", typed(decoder(*args))
    except Exception as exc:  # the refusal's kind is what is compared
        return "error", type(exc).__name__


@given(typed_values())
def test_random_values_decode_as_eth_abi_decodes_them(case: tuple[list[str], list[Any]]) -> None:
    kinds, values = case
    data = encode(kinds, values)
    assert typed(decode_values(kinds, data)) == typed(reference(kinds, data))


@given(
    typed_values(),
    st.lists(st.tuples(st.integers(0, 1 << 12), st.integers(0, 255)), min_size=1, max_size=3),
    st.integers(-40, 40),
)
@settings(max_examples=300)
def test_damaged_encodings_fail_or_decode_as_eth_abi(
    case: tuple[list[str], list[Any]], damage: list[tuple[int, int]], resize: int
) -> None:
    kinds, values = case
    data = bytearray(encode(kinds, values))
    for at, byte in damage:
        if data:
            data[at % len(data)] = byte
    damaged = bytes(data[: len(data) + resize] if resize < 0 else data + bytes(resize))
    assert outcome(decode_values, kinds, damaged) == outcome(reference, kinds, damaged)


@given(st.lists(KINDS, max_size=4), st.binary(max_size=300))
def test_random_bytes_fail_or_decode_as_eth_abi(kinds: list[str], data: bytes) -> None:
    assert outcome(decode_values, kinds, data) == outcome(reference, kinds, data)


@given(st.lists(KINDS, max_size=4), st.lists(st.integers(0, 300), max_size=8))
def test_words_of_small_numbers_fail_or_decode_as_eth_abi(
    kinds: list[str], words: list[int]
) -> None:
    # offsets, lengths, bools and small values are small numbers: random bytes rarely are
    data = b"".join(w.to_bytes(32, "big") for w in words)
    assert outcome(decode_values, kinds, data) == outcome(reference, kinds, data)


def reference_event(spec: EventSpec, log: Log) -> dict[str, Any]:
    data_kinds = [k for k, i in zip(spec.types, spec.indexed, strict=True) if not i]
    values = iter(reference(data_kinds, log.data))
    topics = iter(log.topics[1:])
    out: dict[str, Any] = {}
    for name, kind, indexed in zip(spec.names, spec.types, spec.indexed, strict=True):
        if not indexed:
            out[name] = next(values)
        elif kind in ("string", "bytes") or kind.endswith("]"):
            out[name] = next(topics)
        else:
            out[name] = reference([kind], next(topics))[0]
    return out


@st.composite
def events(draw: st.DrawFn) -> tuple[EventSpec, Log]:
    kinds, values = draw(typed_values())
    indexed = tuple(draw(st.lists(st.booleans(), min_size=len(kinds), max_size=len(kinds))))
    names = tuple(f"field{n}" for n in range(len(kinds)))
    spec = EventSpec("Random", names, tuple(kinds), indexed)
    topics = [spec.topic]
    for kind, value, is_indexed in zip(kinds, values, indexed, strict=True):
        if is_indexed:
            dynamic = kind in ("string", "bytes")
            raw = value.encode() if isinstance(value, str) else value
            topics.append(keccak256(raw) if dynamic else encode([kind], [value]))
    data_pairs = [(k, v) for k, v, i in zip(kinds, values, indexed, strict=True) if not i]
    data = encode([k for k, _ in data_pairs], [v for _, v in data_pairs])
    log = Log(CONTRACT, tuple(topics), data, 1, "0x" + "aa" * 32, "0x" + "bb" * 32, 0)
    return spec, log


@given(events())
def test_events_decode_as_eth_abi_decodes_them(case: tuple[EventSpec, Log]) -> None:
    spec, log = case
    decoded = spec.decode(log)
    assert (decoded.name, decoded.log) == ("Random", log)
    assert typed(decoded.args.items()) == typed(reference_event(spec, log).items())


@given(events(), st.integers(0, 255), st.integers(0, 1 << 10))
def test_events_with_a_damaged_topic_fail_or_decode_as_eth_abi(
    case: tuple[EventSpec, Log], byte: int, at: int
) -> None:
    spec, log = case
    if len(log.topics) > 1:
        index = 1 + at % (len(log.topics) - 1)
        topic = bytearray(log.topics[index])
        topic[at % 32] = byte
        topics = (*log.topics[:index], bytes(topic), *log.topics[index + 1 :])
        log = Log(**{**log.__dict__, "topics": topics})
    expected = outcome(lambda: reference_event(spec, log).items())
    if expected[0] == "ok":
        assert typed(spec.decode(log).args.items()) == expected[1]
    else:  # EventSpec.decode says which event the log fails to match
        assert outcome(spec.decode, log) == ("error", "InternalError")


def test_an_event_with_an_array_or_too_few_topics_goes_through_eth_abi() -> None:
    spec = EventSpec("Batch", ("who", "amounts"), ("address", "uint64[]"), (True, False))
    who = "0x" + "ab" * 20
    log = Log(CONTRACT, (spec.topic, encode(["address"], [who])),
              encode(["uint64[]"], [[1, 2, 3]]), 1, "0x00", "0x01", 0)  # fmt: skip
    assert dict(spec.decode(log).args) == {"who": to_checksum_address(who), "amounts": (1, 2, 3)}
    short = Log(**{**log.__dict__, "topics": (spec.topic,)})
    try:
        spec.decode(short)
    except InternalError as exc:
        assert "does not match event Batch" in str(exc)
    else:
        raise AssertionError("a log with too few topics decoded")
