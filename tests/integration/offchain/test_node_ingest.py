"""The node's sensor side without a network: fast verification, ordering, gaps, windows, the log.

The fast verifier must accept and refuse exactly what the reference functions of
``pervasive.sensing.message`` accept and refuse (property-tested on random
declarations, values and byte corruptions).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pervasive.apps.smartlock import RENTAL_TIME
from pervasive.crypto import PrivateKey, checksum_address
from pervasive.domain import AgreementTerms, FieldType, QoS, Reaction, ReactionKind
from pervasive.errors import PervasiveError
from pervasive.offchain import AgreementSpec
from pervasive.offchain.node import MessageLog, SensorPipeline
from pervasive.sensing import (
    SensorDeclaration,
    SensorMessage,
    SensorVerifier,
    decode_sensor_message,
    sign_sensor_message,
    verify_sensor_message,
)

KEY = PrivateKey(b"\x21" * 32)
OTHER = PrivateKey(b"\x22" * 32)

_VALUES: dict[FieldType, st.SearchStrategy[Any]] = {
    FieldType.BOOL: st.booleans(),
    FieldType.INT64: st.integers(-(2**63), 2**63 - 1),
    FieldType.UINT64: st.integers(0, 2**64 - 1),
    FieldType.INT256: st.integers(-(2**255), 2**255 - 1),
    FieldType.UINT256: st.integers(0, 2**256 - 1),
    FieldType.STRING: st.text(max_size=40),
    FieldType.BYTES: st.binary(max_size=40),
    FieldType.BYTES32: st.binary(min_size=32, max_size=32),
    FieldType.ADDRESS: st.binary(min_size=20, max_size=20).map(checksum_address),
}


@st.composite
def signed_messages(draw: st.DrawFn) -> tuple[SensorDeclaration, bytes]:
    kinds = draw(st.lists(st.sampled_from(list(FieldType)), min_size=1, max_size=5))
    declaration = SensorDeclaration.create(
        KEY.public_key, "probe", [(f"f{i}", k.value) for i, k in enumerate(kinds)]
    )
    values = [draw(_VALUES[k]) for k in kinds]
    signer = draw(st.sampled_from([KEY, KEY, KEY, OTHER]))
    message = sign_sensor_message(KEY, declaration, draw(st.integers(0, 2**64 - 1)), values)
    if signer is OTHER:
        from pervasive.crypto import sign_typed_data

        message = SensorMessage(
            message.public_key, message.sensor_type, message.sequence, message.values,
            sign_typed_data(OTHER, message.typed_hash),
        )  # fmt: skip
    wire = bytearray(message.encode())
    corruption = draw(st.sampled_from(["none", "none", "flip", "truncate", "extend"]))
    if corruption == "flip":
        position = draw(st.integers(0, len(wire) - 1))
        wire[position] ^= 1 << draw(st.integers(0, 7))
    elif corruption == "truncate":
        del wire[draw(st.integers(0, len(wire) - 1)) :]
    elif corruption == "extend":
        wire += b"\x00" * 32
    return declaration, bytes(wire)


def reference(declaration: SensorDeclaration, wire: bytes) -> tuple[str, Any]:
    try:
        message = decode_sensor_message(wire)
        if message.sensor != declaration.address:
            return "error", "SchemaViolation"
        verify_sensor_message(message, declaration)
    except PervasiveError as exc:
        return "error", type(exc).__name__
    return "ok", (message.sequence, message.values, message.struct_hash)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signed_messages())
def test_fast_verification_agrees_with_the_reference(case: tuple[SensorDeclaration, bytes]) -> None:
    declaration, wire = case
    verifier = SensorVerifier([declaration])
    try:
        message = verifier.verify(wire)
    except PervasiveError as exc:
        fast: tuple[str, Any] = ("error", type(exc).__name__)
    else:
        fast = ("ok", (message.sequence, message.values, message.struct_hash))
        assert message.encode() == wire
    assert fast == reference(declaration, wire)


def lock_spec(size: int = 4) -> tuple[AgreementSpec, SensorDeclaration]:
    declaration = SensorDeclaration.create(
        KEY.public_key,
        "smart-lock",
        [("bicycle", "uint64"), ("token", "string"), ("unlocked", "bool"), ("time", "uint64")],
    )
    terms = AgreementTerms(
        parties=(PrivateKey(b"\x03" * 32).address, PrivateKey(b"\x04" * 32).address),
        sensors=(declaration.address,),
        start_points=(0,),
        window_size=size,
        sliding_factor=size,
        function_name=RENTAL_TIME.name,
        function_hash=RENTAL_TIME.source_hash,
        nodes=(KEY.address, OTHER.address),
        node_parties=(0, 1),
        qos=QoS.OFFCHAIN_PROOF,
        reward=0,
        reaction=Reaction(ReactionKind.NONE),
        expiry=2**40,
    )
    spec = AgreementSpec(
        address="0x" + "ab" * 20, chain_id=31337, terms=terms, sensors=(declaration,)
    )
    return spec, declaration


def trace(declaration: SensorDeclaration, count: int) -> list[bytes]:
    return [
        sign_sensor_message(KEY, declaration, q, [1, "k", q % 2 == 0, 1000 + q]).encode()
        for q in range(count)
    ]


def test_out_of_order_messages_make_the_same_windows_in_order() -> None:
    spec, declaration = lock_spec()
    messages = trace(declaration, 8)
    pipeline = SensorPipeline(spec, gap_timeout=5)
    shuffled = [messages[i] for i in (1, 0, 3, 2, 7, 6, 5, 4)]
    windows = pipeline.receive_many(shuffled, now=0).windows
    assert [w.t for w in windows] == [0, 1]
    assert [m.sequence for m in windows[1].messages()] == [4, 5, 6, 7]
    assert pipeline.accepted == 8


def test_a_gap_is_awaited_then_reported_and_the_window_closes_without_it() -> None:
    spec, declaration = lock_spec()
    messages = trace(declaration, 4)
    pipeline = SensorPipeline(spec, gap_timeout=5)
    assert pipeline.receive_many([messages[0], messages[2], messages[3]], now=0).windows == ()
    assert pipeline.tick(now=4.9).windows == ()
    late = pipeline.tick(now=5.0)
    assert [(g.first, g.last) for g in late.gaps] == [(1, 1)]
    [window] = late.windows
    assert window.windows[0].missing == (1,)


def test_replays_forgeries_and_schema_violations_are_counted_by_reason() -> None:
    spec, declaration = lock_spec()
    messages = trace(declaration, 2)
    wrong = SensorDeclaration.create(KEY.public_key, "smart-lock", [("bicycle", "uint64")])
    forged = sign_sensor_message(OTHER, SensorDeclaration.create(
        OTHER.public_key, "smart-lock", [(f.name, f.type.value) for f in declaration.fields]
    ), 1, [1, "k", True, 5]).encode()  # fmt: skip
    pipeline = SensorPipeline(spec, gap_timeout=5)
    result = pipeline.receive_many(
        [
            messages[0],
            messages[0],
            sign_sensor_message(KEY, wrong, 1, [1]).encode(),
            forged,
            b"junk",
        ],
        now=0,
    )
    assert [r for r, _ in result.rejected] == ["replay", "schema", "schema", "malformed"]
    assert pipeline.accepted == 1


def test_the_log_replays_exactly_what_was_accepted(tmp_path: Any) -> None:
    spec, declaration = lock_spec()
    log = MessageLog(tmp_path / "node.sqlite", spec.address)
    pipeline = SensorPipeline(spec, gap_timeout=5)
    accepted = pipeline.receive_many(trace(declaration, 6), now=0).accepted
    log.append(accepted)
    log.append(accepted)
    restarted = SensorPipeline(spec, gap_timeout=5, first_t=1)
    replayed = list(
        MessageLog(tmp_path / "node.sqlite", spec.address).replay({declaration.address: 4})
    )
    assert replayed == [m.encode() for m in accepted[4:]]
    assert restarted.receive_many(replayed, now=0).accepted
    assert log.prune({declaration.address: 4}) == 4
    assert log.count() == 2
