"""Off-chain functions and the smart-lock case study (paper 002, section 2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from offchain_harness import NODE_KEYS, Network, spec_of

from pervasive.apps.smartlock import (
    decode_monthly_rental,
    monthly_rental_time,
    rental_intervals,
    rental_table,
    smart_lock_declaration,
)
from pervasive.committee import Submit
from pervasive.crypto import PrivateKey, abi_encode, keccak256
from pervasive.domain import SigningMode
from pervasive.errors import InvalidInput, NotFound
from pervasive.offchain import (
    Agreed,
    FunctionMismatch,
    FunctionRegistry,
    NodeProtocol,
    WindowBuilder,
    WindowSpec,
    source_hash,
    verify_update,
)
from pervasive.sensing import sign_sensor_message

LOCK_KEY = PrivateKey(b"\x61" * 32)
DAY = 86_400
JAN_31 = 1_706_659_200  # 2024-01-31T00:00:00Z


def lock_window(events: list[tuple[int, str, bool, int]]):
    decl = smart_lock_declaration(LOCK_KEY.public_key.to_bytes())
    spec = WindowSpec((decl.address,), (0,), len(events), len(events))
    builder = WindowBuilder(spec)
    out = []
    for q, event in enumerate(events):
        out += builder.add(sign_sensor_message(LOCK_KEY, decl, q, list(event)))
    [w] = out
    return decl, spec, w


def test_registry_pins_source_hash() -> None:
    registry = FunctionRegistry()
    entry = registry.register("f", lambda w: "x", source="def f(w):\n    return 'x'\n")
    assert entry.source_hash == source_hash("  def f(w):   \n      return 'x'")
    assert registry.resolve("f", entry.source_hash) is entry
    with pytest.raises(FunctionMismatch):
        registry.resolve("f", source_hash("def f(w): return 'y'"))
    with pytest.raises(NotFound):
        registry.resolve("g", entry.source_hash)
    with pytest.raises(InvalidInput):
        registry.register("f", lambda w: None, source="x")


def test_results_are_normalised() -> None:
    registry = FunctionRegistry()
    _, _, w = lock_window([(1, "k", True, 0)])
    assert registry.register("s", lambda w: "é", source="s")(w) == "é".encode()
    assert registry.register("n", lambda w: None, source="n")(w) is None
    with pytest.raises(InvalidInput):
        registry.register("i", lambda w: 5, source="i")(w)  # type: ignore[arg-type,return-value]


def test_rental_time_per_token_per_day_and_month() -> None:
    events = [
        (1, "alice", True, JAN_31 + 3600),
        (2, "bob", True, JAN_31 + 7200),
        (1, "alice", False, JAN_31 + 3600 + 1800),  # 30 min
        (2, "bob", False, JAN_31 + DAY + 600),  # crosses midnight into February
        (1, "alice", True, JAN_31 + DAY + 100),  # still open at the end: not counted
    ]
    _, _, w = lock_window(events)
    table, rentals = rental_table(w)
    day = JAN_31 // DAY
    assert table == [("alice", day, 1800), ("bob", day, DAY - 7200), ("bob", day + 1, 600)]
    assert rentals == 2
    result = monthly_rental_time(w)
    assert result is not None and len(result) == 160
    monthly = decode_monthly_rental(result)
    assert monthly.seconds == 1800 + DAY - 7200 + 600  # T_m: what the insurer bills
    assert monthly.month == 202401  # the month of the first rental day
    assert (monthly.rentals, monthly.tokens) == (2, 2)
    assert monthly.daily_hash == keccak256(abi_encode(["(string,uint32,uint64)[]"], [table]))
    assert monthly_rental_time(w) == result  # deterministic


def test_no_completed_rental_is_null() -> None:
    _, _, w = lock_window([(1, "k", True, 10), (2, "k", False, 20)])
    assert monthly_rental_time(w) is None


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 3), st.sampled_from(["a", "b"]), st.booleans(), st.integers(0, 10 * DAY)
        ),
        max_size=30,
    )
)
def test_rental_total_equals_sum_of_intervals(events: list[tuple[int, str, bool, int]]) -> None:
    intervals = rental_intervals(events)
    assert all(end >= start for _, start, end in intervals)
    if not events:
        return
    _, _, w = lock_window(events)
    table, rentals = rental_table(w)
    result = monthly_rental_time(w)
    total = sum(end - start for _, start, end in intervals)
    assert rentals == len(intervals)
    if result is None:
        assert total == 0
    else:
        assert sum(s for *_, s in table) == total == decode_monthly_rental(result).seconds


def test_smart_lock_agreement_end_to_end() -> None:
    """Insurance and service provider each run a node; both agree on the rental time."""
    registry = FunctionRegistry()
    function = registry.register("rental_time", monthly_rental_time)
    decl, window_spec, w = lock_window([(7, "tok", True, JAN_31), (7, "tok", False, JAN_31 + 900)])
    spec = spec_of(
        (decl,), size=window_spec.size, sliding=window_spec.sliding, function=function,
        mode=SigningMode.RING, address="0x" + "ab" * 20,
    )  # fmt: skip
    resolved = registry.resolve(spec.function_name, spec.function_hash)
    net = Network({k.address: NodeProtocol(k, spec, resolved) for k in NODE_KEYS[:2]})
    for address in net.nodes:
        net.start(address, w)
    net.run()
    updates = {a.transaction for a in net.all_of(Submit) if isinstance(a, Submit)}
    [update] = updates  # both nodes hold the same update
    stored = verify_update(spec, update)
    monthly = decode_monthly_rental(stored.result)
    assert (monthly.seconds, monthly.month) == (900, 202401)
    assert len(net.all_of(Agreed)) == 2
