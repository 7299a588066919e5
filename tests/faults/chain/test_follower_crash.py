"""kill -9 of a follower process mid-delivery: the next follower loses and repeats nothing."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from chain_contract import deploy_counter
from follower_child import SlowRecorder

from pervasive.chain import EventFollower, Ledger

pytestmark = [pytest.mark.anvil, pytest.mark.parametrize("ledger", ["anvil"], indirect=True)]

CHILD = Path(__file__).with_name("follower_child.py")


def rows(path: Path) -> list[tuple[str, int, int, int]]:
    with sqlite3.connect(path, timeout=30) as db:
        return db.execute("SELECT * FROM seen ORDER BY block_number, log_index").fetchall()


async def test_killed_follower_process_resumes_exactly_once(ledger: Ledger, tmp_path: Path) -> None:
    manager = ledger.transactor(ledger.dev_signer(0))
    counter = await deploy_counter(manager)
    count = 30
    await manager.wait_all(await manager.submit_many([counter.bump(1)] * count))
    db_path = tmp_path / "follower.sqlite"
    with sqlite3.connect(db_path) as db:
        db.execute(
            "CREATE TABLE seen (block_hash TEXT, log_index INT, block_number INT, total INT)"
        )

    assert ledger.url is not None
    child = subprocess.Popen(
        [sys.executable, str(CHILD), ledger.url, counter.address, str(db_path), "0.03"]
    )
    try:
        for _ in range(600):
            if len(rows(db_path)) >= 10 or child.poll() is not None:
                break
            await asyncio.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    delivered_before = len(rows(db_path))
    assert 10 <= delivered_before < count  # killed mid-way

    follower = EventFollower(ledger, counter.address, db_path, "counter", SlowRecorder(0))
    try:
        assert await follower.poll() == count - delivered_before
    finally:
        follower.close()
    seen = rows(db_path)
    assert [total for *_, total in seen] == list(range(1, count + 1))
    assert len({(block_hash, index) for block_hash, index, *_ in seen}) == count
