"""Acknowledged is not saved: the outbox retains what the broker acknowledged (issue 11, item 6).

A row is waiting until its PUBACK, then retained for ``retention`` seconds, then
forgotten, but only once the broker was heard from ``retention`` seconds after the
PUBACK. A new connection's drain sends every retained row again, oldest first.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pervasive.messaging.outbox import Outbox, OutboxEntry, drain_outbox

TOPIC = "pervasive/devices/d/t"


def test_an_acknowledged_row_is_retained_and_sent_again_after_a_drop() -> None:
    outbox = Outbox.open(":memory:", retention=7.0)
    first, second, third = outbox.append_many([(TOPIC, b"1"), (TOPIC, b"2"), (TOPIC, b"3")])
    outbox.acknowledged([first.sequence, second.sequence])
    assert (len(outbox), outbox.retained) == (1, 2)
    assert outbox.peek(10) == [third]  # the drain does not send them again on this connection
    assert outbox.resend_retained() == 2
    assert outbox.peek(10) == [first, second, third]
    assert (len(outbox), outbox.retained) == (3, 0)


def test_a_row_is_forgotten_only_once_the_broker_was_heard_retention_after_its_puback() -> None:
    outbox = Outbox.open(":memory:", retention=7.0)
    first, second = outbox.append_many([(TOPIC, b"1"), (TOPIC, b"2")])
    outbox.acknowledged([first.sequence], at=100.0)
    outbox.acknowledged([second.sequence], at=104.0)
    assert outbox.next_retirement() == 107.0
    assert outbox.retire(heard_at=106.9) == 0
    assert outbox.retire(heard_at=107.0) == 1
    assert outbox.retained == 1
    assert outbox.next_retirement() == 111.0
    assert outbox.resend_retained() == 1
    assert outbox.peek(10) == [second]


def test_without_retention_a_row_is_forgotten_at_its_puback() -> None:
    outbox = Outbox.open(":memory:")
    entries = outbox.append_many([(TOPIC, b"1"), (TOPIC, b"2")])
    outbox.acknowledged([entries[0].sequence])
    outbox.acknowledged([entries[1].sequence])
    assert (len(outbox), outbox.retained, outbox.resend_retained()) == (0, 0, 0)
    assert outbox.next_retirement() is None


def test_an_outbox_written_before_retention_opens_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE outbox (sequence INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
        " payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,"
        " accepted_at REAL NOT NULL);"
        f"INSERT INTO outbox (topic, payload, qos, retain, accepted_at)"
        f" VALUES ('{TOPIC}', x'31', 1, 0, 0);"
    )
    old.close()
    outbox = Outbox.open(path, retention=7.0)
    (entry,) = outbox.peek(10)
    assert entry.payload == b"1"
    outbox.acknowledged([entry.sequence])
    assert (len(outbox), outbox.retained) == (0, 1)
    outbox.close()


async def _drain_until_drained(
    outbox: Outbox, sent: list[int], *, heard: float | None = None, linger: float = 0.0
) -> None:
    """One connection: a broker that acknowledges everything at once; runs until idle."""

    def send(entry: OutboxEntry) -> asyncio.Future[None]:
        sent.append(entry.sequence)
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged

    wakeup, drained = asyncio.Event(), asyncio.Event()
    wakeup.set()
    drain = asyncio.create_task(
        drain_outbox(
            outbox,
            send,
            wakeup=wakeup,
            drained=drained,
            window=4,
            heard=time.time if heard is None else (lambda: heard),
        )
    )
    await asyncio.wait_for(drained.wait(), 5)
    await asyncio.sleep(linger)
    drain.cancel()
    await asyncio.gather(drain, return_exceptions=True)


async def test_each_new_connection_sends_again_what_the_last_one_had_acknowledged() -> None:
    outbox = Outbox.open(":memory:", retention=60.0)
    sequences = [e.sequence for e in outbox.append_many([(TOPIC, b"%d" % i) for i in range(10)])]
    first: list[int] = []
    await _drain_until_drained(outbox, first)
    assert first == sequences
    assert (len(outbox), outbox.retained) == (0, 10)
    again: list[int] = []
    await _drain_until_drained(outbox, again)  # the connection dropped: a broker crash?
    assert again == sequences  # all of them, oldest first
    assert outbox.retained == 10


async def test_an_idle_drain_forgets_rows_once_the_broker_outlived_their_retention() -> None:
    outbox = Outbox.open(":memory:", retention=0.2)
    outbox.append_many([(TOPIC, b"1"), (TOPIC, b"2")])
    await _drain_until_drained(outbox, [], linger=0.6)
    assert (len(outbox), outbox.retained) == (0, 0)


async def test_a_silent_broker_keeps_the_rows_retained() -> None:
    outbox = Outbox.open(":memory:", retention=0.2)
    outbox.append_many([(TOPIC, b"1"), (TOPIC, b"2")])
    # last heard from before the PUBACKs: it may have died since, unsaved
    await _drain_until_drained(outbox, [], heard=time.time() - 1.0, linger=0.6)
    assert outbox.retained == 2


class RetentionMachine(RuleBasedStateMachine):
    """Appends, PUBACKs, drops, retirements and restarts in any order, against a model."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.path = Path(self.folder.name) / "outbox.sqlite"
        self.outbox = Outbox.open(self.path, retention=5.0)
        self.waiting: list[int] = []
        self.retained: dict[int, float] = {}
        self.clock = 1000.0

    @rule(count=st.integers(min_value=1, max_value=3))
    def append(self, count: int) -> None:
        entries = self.outbox.append_many([(TOPIC, b"x")] * count)
        self.waiting += [e.sequence for e in entries]

    @precondition(lambda self: self.waiting)
    @rule(count=st.integers(min_value=1, max_value=3), elapsed=st.floats(0, 4))
    def puback(self, count: int, elapsed: float) -> None:
        self.clock += elapsed
        acknowledged, self.waiting = self.waiting[:count], self.waiting[count:]
        self.outbox.acknowledged(acknowledged, at=self.clock)
        self.retained.update(dict.fromkeys(acknowledged, self.clock))

    @rule(lag=st.floats(0, 8))
    def retire(self, lag: float) -> None:
        heard = self.clock - lag
        forgotten = {s for s, at in self.retained.items() if at <= heard - 5.0}
        assert self.outbox.retire(heard) == len(forgotten)
        for sequence in forgotten:
            del self.retained[sequence]

    @rule()
    def connection_dropped(self) -> None:
        assert self.outbox.resend_retained() == len(self.retained)
        self.waiting = sorted([*self.waiting, *self.retained])
        self.retained.clear()

    @rule()
    def restart(self) -> None:
        self.outbox.close()
        self.outbox = Outbox.open(self.path, retention=5.0)

    @invariant()
    def the_outbox_matches_the_model(self) -> None:
        assert [e.sequence for e in self.outbox.peek(10_000)] == self.waiting
        assert (len(self.outbox), self.outbox.retained) == (len(self.waiting), len(self.retained))

    def teardown(self) -> None:
        self.outbox.close()
        self.folder.cleanup()


TestRetentionMachine = RetentionMachine.TestCase
TestRetentionMachine.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
