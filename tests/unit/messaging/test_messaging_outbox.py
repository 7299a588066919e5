"""The durable outbox keeps order and loses nothing; the dedupe record applies once."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pervasive.errors import InvalidInput
from pervasive.messaging.dedupe import Deduplicator
from pervasive.messaging.outbox import Outbox, OutboxEntry, drain_outbox


class OutboxMachine(RuleBasedStateMachine):
    """Appends, acknowledgements and process restarts in any interleaving."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.path = Path(self.folder.name) / "outbox.sqlite"
        self.outbox = Outbox.open(self.path)
        self.model: list[tuple[str, bytes]] = []
        self.last_sequence = 0

    @rule(payload=st.binary(max_size=16), suffix=st.sampled_from(["a", "b"]))
    def append(self, payload: bytes, suffix: str) -> None:
        entry = self.outbox.append(f"pervasive/devices/d/{suffix}", payload)
        assert entry.sequence > self.last_sequence
        self.last_sequence = entry.sequence
        self.model.append((entry.topic, payload))

    @rule()
    def acknowledge_head(self) -> None:
        head = self.outbox.head()
        if head is None:
            assert self.model == []
            return
        assert (head.topic, head.payload) == self.model.pop(0)
        self.outbox.remove(head.sequence)

    @rule()
    def restart(self) -> None:
        self.outbox.close()
        self.outbox = Outbox.open(self.path)

    @invariant()
    def contents_match_the_model(self) -> None:
        entries = self.outbox.peek(10_000)
        assert [(e.topic, e.payload) for e in entries] == self.model
        sequences = [e.sequence for e in entries]
        assert sequences == sorted(sequences)
        assert len(self.outbox) == len(self.model)

    def teardown(self) -> None:
        self.outbox.close()
        self.folder.cleanup()


TestOutboxMachine = OutboxMachine.TestCase
TestOutboxMachine.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=30),
    failures=st.lists(st.booleans(), min_size=1, max_size=60),
)
def test_drain_over_a_flaky_link_delivers_everything_in_order(
    count: int, failures: list[bool]
) -> None:
    """Each send may fail before (lost PUBLISH) or after the broker got it (lost PUBACK)."""
    outbox = Outbox.open(":memory:")
    for index in range(count):
        outbox.append("pervasive/devices/d/t", str(index).encode())
    broker_log: list[int] = []
    plan = iter(failures)

    async def send(entry: OutboxEntry) -> None:
        outcome = next(plan, None)
        if outcome is None:  # link healthy from here on
            broker_log.append(int(entry.payload))
            return
        if outcome:  # PUBACK lost: the broker has it, we do not know
            broker_log.append(int(entry.payload))
        raise ConnectionError("link dropped")

    async def run() -> None:
        while len(outbox):
            wakeup, drained = asyncio.Event(), asyncio.Event()
            task = asyncio.create_task(drain_outbox(outbox, send, wakeup=wakeup, drained=drained))
            idle = asyncio.create_task(drained.wait())
            await asyncio.wait({task, idle}, return_when=asyncio.FIRST_COMPLETED)
            for pending in (task, idle):  # a failed task is a dropped connection: reconnect
                pending.cancel()
            await asyncio.gather(task, idle, return_exceptions=True)

    asyncio.run(run())
    first_seen = list(dict.fromkeys(broker_log))
    assert first_seen == list(range(count))  # nothing lost, order kept
    assert broker_log == sorted(broker_log)  # a resend only repeats the newest message
    assert len(outbox) == 0


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=40),
    window=st.integers(min_value=2, max_value=8),
    failures=st.lists(st.sampled_from(["ok", "lost", "unacked"]), min_size=1, max_size=80),
)
def test_a_windowed_drain_over_a_flaky_link_loses_nothing_and_keeps_first_order(
    count: int, window: int, failures: list[str]
) -> None:
    """Up to ``window`` PUBLISHes in flight; a drop ends the connection for all of them."""
    outbox = Outbox.open(":memory:")
    outbox.append_many([("pervasive/devices/d/t", str(i).encode()) for i in range(count)])
    broker_log: list[int] = []
    plan = iter(failures)
    link = {"up": True, "most_in_flight": 0, "in_flight": 0}

    async def send(entry: OutboxEntry) -> None:
        if not link["up"]:  # the TCP connection is gone: nothing after the drop arrives
            raise ConnectionError("link down")
        outcome = next(plan, "ok")
        if outcome in ("ok", "unacked"):
            broker_log.append(int(entry.payload))
        if outcome != "ok":
            link["up"] = False
            raise ConnectionError("link dropped")
        link["in_flight"] += 1
        link["most_in_flight"] = max(link["most_in_flight"], link["in_flight"])
        await asyncio.sleep(0)  # the PUBACK comes back a little later
        link["in_flight"] -= 1

    async def run() -> None:
        while len(outbox):
            link["up"] = True
            wakeup, drained = asyncio.Event(), asyncio.Event()
            task = asyncio.create_task(
                drain_outbox(outbox, send, wakeup=wakeup, drained=drained, window=window)
            )
            idle = asyncio.create_task(drained.wait())
            await asyncio.wait({task, idle}, return_when=asyncio.FIRST_COMPLETED)
            for pending in (task, idle):
                pending.cancel()
            await asyncio.gather(task, idle, return_exceptions=True)

    asyncio.run(run())
    assert list(dict.fromkeys(broker_log)) == list(range(count))  # nothing lost, order kept
    assert len(outbox) == 0
    assert link["most_in_flight"] <= window
    if count >= window and all(f == "ok" for f in failures):
        assert link["most_in_flight"] == window  # the window is used, not one at a time


def test_batches_are_appended_and_removed_whole(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.sqlite")
    entries = outbox.append_many([("t/a", b"1"), ("t/b", b"2"), ("t/c", b"3")])
    assert [e.sequence for e in entries] == [1, 2, 3]
    with pytest.raises(TypeError):  # a bad row rolls the whole batch back
        outbox.append_many([("t/d", b"4"), ("t/e", None)])  # type: ignore[list-item]
    outbox.remove_many([1, 3])
    outbox.close()
    reopened = Outbox.open(tmp_path / "o.sqlite")
    assert [(e.topic, e.payload) for e in reopened.peek(10)] == [("t/b", b"2")]
    assert reopened.peek(10, after=2) == []


def test_outbox_survives_reopening(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "o.sqlite")
    first = outbox.append("t/1", b"one")
    outbox.append("t/2", b"two", retain=True)
    outbox.remove(first.sequence)
    outbox.close()
    reopened = Outbox.open(tmp_path / "o.sqlite")
    head = reopened.head()
    assert head is not None
    assert (head.topic, head.payload, head.retain) == ("t/2", b"two", True)
    assert reopened.append("t/3", b"three").sequence > head.sequence


def test_dedupe_applies_once_even_after_a_restart(tmp_path: Path) -> None:
    seen = Deduplicator.open(tmp_path / "seen.sqlite")
    assert seen.first_time("lock-7", 1)
    assert not seen.first_time("lock-7", 1)
    assert seen.first_time("lock-8", 1)
    seen.close()
    again = Deduplicator.open(tmp_path / "seen.sqlite")
    assert not again.first_time("lock-7", 1)
    assert again.seen("lock-8", 1)
    assert again.forget_before("lock-7", 2) == 1


def test_apply_once_records_only_what_was_applied(tmp_path: Path) -> None:
    seen = Deduplicator.open(tmp_path / "seen.sqlite")
    with pytest.raises(RuntimeError), seen.apply_once("lock-7", 5) as fresh:
        assert fresh
        raise RuntimeError("the reaction failed")
    with seen.apply_once("lock-7", 5) as fresh:
        assert fresh  # the failed attempt left no mark: the redelivery is applied
    with seen.apply_once("lock-7", 5) as fresh:
        assert not fresh


@pytest.mark.parametrize(("sender", "sequence"), [("", 1), ("a", -1), ("a", True)])
def test_dedupe_keys_are_checked(tmp_path: Path, sender: str, sequence: int) -> None:
    with pytest.raises(InvalidInput):
        Deduplicator.open(":memory:").first_time(sender, sequence)
