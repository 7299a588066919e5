"""The follower's batched delivery, and the transaction index every log carries.

A range's logs are delivered in one SQLite transaction per ``batch_logs`` logs (or
``batch_seconds``): what another connection sees grows batch by batch; a handler
error mid-batch keeps the logs before it and undoes only its own writes; a restart
delivers the rest once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from chain_contract import Counter

from pervasive.chain import EventFollower, Ledger, Log, Receipt, TransactionManager


class Watcher:
    """Records each log in the follower's database and what a reader saw committed then."""

    def __init__(self, path: Path, *, fail_at: int | None = None) -> None:
        self.path = path
        self.fail_at = fail_at
        self.committed_before: list[int] = []

    async def deliver(self, log: Log, db: sqlite3.Connection) -> None:
        with sqlite3.connect(self.path) as reader:  # another connection: committed rows only
            self.committed_before.append(reader.execute("SELECT COUNT(*) FROM seen").fetchone()[0])
        _by, total = Counter.bumped(log)
        db.execute("INSERT INTO seen VALUES (?, ?, ?)", (log.block_hash, log.log_index, total))
        if total == self.fail_at:
            raise RuntimeError("handler failed")

    async def retract(self, log: Log, db: sqlite3.Connection) -> None:
        raise AssertionError("no reorganisation here")


def totals(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT total FROM seen ORDER BY total")]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "follower.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE seen (block_hash TEXT, log_index INT, total INT)")
    return path


async def bump(manager: TransactionManager, counter: Counter, times: int) -> list[Receipt]:
    return await manager.wait_all(await manager.submit_many([counter.bump(1)] * times))


async def test_logs_commit_batch_by_batch_and_a_failure_keeps_the_batch_before_it(
    ledger: Ledger, manager: TransactionManager, counter: Counter, db_path: Path
) -> None:
    await bump(manager, counter, 10)
    watcher = Watcher(db_path, fail_at=7)
    follower = EventFollower(ledger, counter.address, db_path, "c", watcher, batch_logs=4)
    with pytest.raises(RuntimeError, match="handler failed"):
        await follower.poll()
    # logs 1-4 in one transaction, 5-6 committed with the failure of 7, whose write is undone
    assert watcher.committed_before == [0, 0, 0, 0, 4, 4, 4]
    assert totals(db_path) == [1, 2, 3, 4, 5, 6]
    follower.close()

    again = Watcher(db_path)
    follower = EventFollower(ledger, counter.address, db_path, "c", again, batch_logs=4)
    assert await follower.poll() == 4  # 7-10, once
    assert again.committed_before == [6, 6, 6, 6]
    assert totals(db_path) == list(range(1, 11))
    assert await follower.poll() == 0
    follower.close()


async def test_the_time_bound_ends_a_batch(
    ledger: Ledger, manager: TransactionManager, counter: Counter, db_path: Path
) -> None:
    await bump(manager, counter, 3)
    watcher = Watcher(db_path)
    follower = EventFollower(
        ledger, counter.address, db_path, "c", watcher, batch_logs=100, batch_seconds=1e-9
    )
    assert await follower.poll() == 3
    assert watcher.committed_before == [0, 1, 2]  # each log its own transaction
    follower.close()


def test_batch_bounds_are_checked(ledger: Ledger, db_path: Path) -> None:
    from pervasive.chain import FollowerError

    watcher = Watcher(db_path)
    with pytest.raises(FollowerError, match="batch_logs"):
        EventFollower(ledger, "0x" + "11" * 20, db_path, "c", watcher, batch_logs=0)
    with pytest.raises(FollowerError, match="batch_seconds"):
        EventFollower(ledger, "0x" + "11" * 20, db_path, "c", watcher, batch_seconds=0)


async def _automine(ledger: Ledger, on: bool) -> None:
    if ledger.kind == "embedded":
        tester = ledger.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        if on:
            tester.enable_auto_mine_transactions()  # mines what is pending, in one block
        else:
            tester.disable_auto_mine_transactions()
        return
    if on:
        await ledger.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    await ledger.w3.provider.make_request("evm_setAutomine", [on])  # type: ignore[arg-type]


async def test_logs_carry_their_transaction_index_on_both_backends(
    ledger: Ledger, counter: Counter
) -> None:
    await _automine(ledger, False)
    try:
        # three senders: the embedded chain checks nonces against the mined state
        managers = [ledger.transactor(ledger.dev_signer(n)) for n in (1, 2, 3)]
        sent = [(m, await m.send(counter.bump(1))) for m in managers]
    finally:
        await _automine(ledger, True)
    receipts: Sequence[Receipt] = [await m.wait(pending) for m, pending in sent]
    assert len({receipt.block_hash for receipt in receipts}) == 1, "not one block"
    header = await ledger.rpc.block_header(receipts[0].block_hash)
    assert header is not None
    expected = [header.transaction_hashes.index(r.transaction_hash) for r in receipts]
    assert sorted(expected) == [0, 1, 2]
    assert [log.transaction_index for r in receipts for log in r.logs] == expected
    logs = await ledger.logs(counter.address, receipts[0].block_number, receipts[0].block_number)
    by_tx = {r.transaction_hash: i for r, i in zip(receipts, expected, strict=True)}
    assert [log.transaction_index for log in logs] == [by_tx[log.transaction_hash] for log in logs]
    assert sorted(log.transaction_index for log in logs) == [0, 1, 2]  # type: ignore[type-var]
