"""Sequence numbers never repeat, also across a crash that loses the in-memory lease."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.devices import SequenceCounter


def test_numbers_continue_after_a_clean_reopen(tmp_path: Path) -> None:
    counter = SequenceCounter.open(tmp_path / "seq.sqlite", lease=1)
    assert [counter.next("a") for _ in range(3)] == [0, 1, 2]
    assert counter.next("b") == 0
    counter.close()
    again = SequenceCounter.open(tmp_path / "seq.sqlite", lease=1)
    assert again.next("a") == 3
    assert again.peek("b") == 1


@settings(max_examples=30, deadline=None)
@given(runs=st.lists(st.integers(0, 40), min_size=1, max_size=6), lease=st.integers(1, 16))
def test_no_number_is_used_twice_whatever_crashes_happen(runs: list[int], lease: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "seq.sqlite"
        used: list[int] = []
        for count in runs:  # each run is a process that dies without closing
            counter = SequenceCounter.open(path, lease=lease)
            used.extend(counter.next("s") for _ in range(count))
            del counter
        assert used == sorted(set(used))
