"""A mapper process for the kill test: ``python interop_child.py URL ADDRESS HOME SPEC DELAY``.

The same follower and handler an ``InteropFeed(ledger, HOME)`` runs (name ``interop``,
``<HOME>/interop/events.sqlite``), with a handler that dawdles inside the follower's open
transaction after appending, so a kill usually lands mid-delivery.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

from pervasive.chain import EventFollower, Log, open_ledger
from pervasive.config import Settings
from pervasive.interop import EventStore, MappingHandler, events_path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "interop"))
from quotes import quotes_mappings


class SlowHandler(MappingHandler):
    delay = 0.0

    async def deliver(self, log: Log, db: sqlite3.Connection) -> None:
        await super().deliver(log, db)
        await asyncio.sleep(self.delay)


async def main(url: str, address: str, home: str, spec: str, delay: float) -> None:
    settings = Settings(home=Path(home) / "child", backend="rpc", rpc_url=url)
    ledger = await open_ledger(settings)
    path = events_path(Path(home))
    EventStore(path).close()  # the log's tables, as InteropFeed creates them
    handler = SlowHandler(ledger, {address: quotes_mappings(Path(spec))})
    handler.delay = delay
    follower = EventFollower(ledger, [address], path, "interop", handler, poll_interval=0.02)
    try:
        await follower.run()
    finally:
        follower.close()
        await ledger.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5], float(sys.argv[5])))
