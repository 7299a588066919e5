"""The event follower: exactly once across stops, handler failures and reorganisations."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from chain_contract import Counter

from pervasive.chain import EventFollower, FollowerError, Ledger, Log, TransactionManager


class Recorder:
    """A handler that keeps its effect in the follower's database (the exactly-once case)."""

    def __init__(self, *, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.calls = 0
        self.retracted: list[Log] = []
        self.follower: EventFollower | None = None
        self.stop_after: int | None = None

    async def deliver(self, log: Log, db: sqlite3.Connection) -> None:
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            db.execute("INSERT INTO seen VALUES ('half-done', -1, -1, -1)")
            raise RuntimeError("handler crashed")
        _by, total = Counter.bumped(log)
        db.execute(
            "INSERT INTO seen VALUES (?, ?, ?, ?)",
            (log.block_hash, log.log_index, log.block_number, total),
        )
        if self.stop_after is not None and self.calls >= self.stop_after and self.follower:
            self.follower.stop()

    async def retract(self, log: Log, db: sqlite3.Connection) -> None:
        assert log.removed
        db.execute(
            "DELETE FROM seen WHERE block_hash = ? AND log_index = ?",
            (log.block_hash, log.log_index),
        )
        self.retracted.append(log)


def seen(path: Path) -> list[tuple[str, int, int, int]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM seen ORDER BY block_number, log_index").fetchall()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "follower.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE seen (block_hash TEXT, log_index INT, block_number INT, total INT)"
        )
    return path


def follower_for(
    ledger: Ledger, counter: Counter, db_path: Path, handler: Recorder, **kw: object
) -> EventFollower:
    follower = EventFollower(ledger, counter.address, db_path, "counter", handler, **kw)  # type: ignore[arg-type]
    handler.follower = follower
    return follower


async def bump(manager: TransactionManager, counter: Counter, times: int) -> None:
    await manager.wait_all(await manager.submit_many([counter.bump(1)] * times))


async def test_delivers_each_log_once_in_order(
    ledger: Ledger, manager: TransactionManager, counter: Counter, db_path: Path
) -> None:
    await bump(manager, counter, 5)
    follower = follower_for(ledger, counter, db_path, Recorder(), batch_blocks=2)
    assert await follower.poll() == 5
    assert [row[3] for row in seen(db_path)] == [1, 2, 3, 4, 5]
    assert await follower.poll() == 0
    await bump(manager, counter, 2)
    assert await follower.poll() == 2
    assert [row[3] for row in seen(db_path)] == [1, 2, 3, 4, 5, 6, 7]
    checkpoint = follower.checkpoint
    assert checkpoint is not None
    assert checkpoint.number == await ledger.block_number()
    assert checkpoint.hash == (await ledger.block(checkpoint.number)).hash
    follower.close()


async def test_restart_midway_loses_and_repeats_nothing(
    ledger: Ledger, manager: TransactionManager, counter: Counter, db_path: Path
) -> None:
    await bump(manager, counter, 6)
    first = Recorder()
    first.stop_after = 4
    follower = follower_for(ledger, counter, db_path, first)
    assert await follower.poll() == 4
    follower.close()
    assert len(seen(db_path)) == 4
    second = follower_for(ledger, counter, db_path, Recorder())
    assert await second.poll() == 2
    assert [row[3] for row in seen(db_path)] == [1, 2, 3, 4, 5, 6]
    second.close()


async def test_a_failing_handler_rolls_back_its_log(
    ledger: Ledger, manager: TransactionManager, counter: Counter, db_path: Path
) -> None:
    await bump(manager, counter, 4)
    follower = follower_for(ledger, counter, db_path, Recorder(fail_at=3))
    with pytest.raises(RuntimeError, match="handler crashed"):
        await follower.poll()
    assert [row[3] for row in seen(db_path)] == [1, 2]  # the half-done write is gone
    assert await follower.poll() == 2
    assert [row[3] for row in seen(db_path)] == [1, 2, 3, 4]
    follower.close()


async def test_confirmations_hold_back_young_blocks(
    ledger: Ledger, manager: TransactionManager, counter: Counter, db_path: Path
) -> None:
    follower = follower_for(ledger, counter, db_path, Recorder(), confirmations=2)
    await follower.poll()
    await bump(manager, counter, 1)
    assert await follower.poll() == 0
    await ledger.mine(2)
    assert await follower.poll() == 1
    follower.close()


async def test_run_follows_until_stopped(
    ledger: Ledger, manager: TransactionManager, counter: Counter, db_path: Path
) -> None:
    follower = follower_for(ledger, counter, db_path, Recorder(), poll_interval=0.02)
    task = asyncio.create_task(follower.run())
    await bump(manager, counter, 3)
    for _ in range(200):
        if len(seen(db_path)) == 3:
            break
        await asyncio.sleep(0.02)
    follower.stop()
    await asyncio.wait_for(task, 5)
    assert [row[3] for row in seen(db_path)] == [1, 2, 3]
    follower.close()


async def test_handler_must_not_commit(
    ledger: Ledger, manager: TransactionManager, counter: Counter, db_path: Path
) -> None:
    class Committer(Recorder):
        async def deliver(self, log: Log, db: sqlite3.Connection) -> None:
            db.execute("COMMIT")

    await bump(manager, counter, 1)
    follower = follower_for(ledger, counter, db_path, Committer())
    with pytest.raises(FollowerError, match="without COMMIT"):
        await follower.poll()
    follower.close()


async def _reorg(ledger: Ledger, depth: int, txs: list[dict[str, str]]) -> None:
    response = await ledger.w3.provider.make_request(  # type: ignore[arg-type]
        "anvil_reorg", [depth, [[tx, 0] for tx in txs]]
    )
    assert "error" not in response, response


@pytest.mark.anvil
@pytest.mark.parametrize("ledger", ["anvil"], indirect=True)
async def test_reorg_retracts_orphaned_logs_and_delivers_replacements_once(
    ledger: Ledger, manager: TransactionManager, counter: Counter, db_path: Path
) -> None:
    for _ in range(5):
        await manager.transact(counter.bump(1))  # one block each
    head = await ledger.block_number()
    handler = Recorder()
    follower = follower_for(ledger, counter, db_path, handler, batch_blocks=3)
    assert await follower.poll() == 5
    orphaned = {(row[0], row[1]) for row in seen(db_path) if row[2] > head - 2}
    assert len(orphaned) == 2

    # replace the last two blocks: the first new one carries a bump by another account
    other = ledger.dev_signer(5).address
    tx = {"from": other, "to": counter.address, "data": "0x" + counter.bump(10).data.hex()}
    await _reorg(ledger, 2, [tx])
    assert await ledger.block_number() == head
    assert await follower.poll() == 1

    assert {log.key for log in handler.retracted} == orphaned
    assert all(log.removed for log in handler.retracted)
    canonical = await ledger.logs(counter.address, 0, head)
    assert [(row[0], row[1]) for row in seen(db_path)] == [log.key for log in canonical]
    assert [row[3] for row in seen(db_path)] == [1, 2, 3, 13]
    assert await counter.total() == 13
    # nothing more happens on the next polls, and new logs keep flowing
    assert await follower.poll() == 0
    manager.forget_nonce()  # anvil dropped our two orphaned transactions (a real node re-mines)
    await bump(manager, counter, 1)
    assert await follower.poll() == 1
    assert [row[3] for row in seen(db_path)] == [1, 2, 3, 13, 14]
    follower.close()


@pytest.mark.anvil
@pytest.mark.parametrize("ledger", ["anvil"], indirect=True)
async def test_reorg_deeper_than_remembered_is_refused(
    ledger: Ledger, manager: TransactionManager, counter: Counter, db_path: Path
) -> None:
    for _ in range(6):
        await manager.transact(counter.bump(1))
    follower = follower_for(ledger, counter, db_path, Recorder(), batch_blocks=1, max_reorg_depth=2)
    assert await follower.poll() == 6
    await _reorg(ledger, 5, [])
    with pytest.raises(FollowerError, match="deeper than max_reorg_depth=2"):
        await follower.poll()
    follower.close()
