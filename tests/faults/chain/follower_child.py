"""A follower process for the crash test: ``python follower_child.py URL ADDRESS DB DELAY``.

Its handler writes each log into the ``seen`` table of the follower's own database and
then dawdles inside the open transaction, so a kill usually lands mid-delivery.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

from pervasive.chain import EventFollower, Log, open_ledger
from pervasive.config import Settings


class SlowRecorder:
    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def deliver(self, log: Log, db: sqlite3.Connection) -> None:
        total = int.from_bytes(log.data[32:64], "big")
        db.execute(
            "INSERT INTO seen VALUES (?, ?, ?, ?)",
            (log.block_hash, log.log_index, log.block_number, total),
        )
        await asyncio.sleep(self.delay)

    async def retract(self, log: Log, db: sqlite3.Connection) -> None:
        db.execute(
            "DELETE FROM seen WHERE block_hash = ? AND log_index = ?",
            (log.block_hash, log.log_index),
        )


async def main(url: str, address: str, db_path: str, delay: float) -> None:
    settings = Settings(home=Path(db_path).parent / "child-home", backend="rpc", rpc_url=url)
    ledger = await open_ledger(settings)
    follower = EventFollower(
        ledger, address, db_path, "counter", SlowRecorder(delay), poll_interval=0.05
    )
    try:
        await follower.run()
    finally:
        follower.close()
        await ledger.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
