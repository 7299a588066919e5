"""Cancelled requests never leave the process unable to reach its nodes.

web3's HTTP session manager takes one process-wide threading lock per request in an
executor thread; a request cancelled while waiting for it could leave it held, and
every later request of the process (any node, any event loop) then waited forever
with an idle loop. ``RpcClient`` shields each request from its caller's cancellation.
This test cancels hundreds of in-flight requests at random moments, as pollers
stopping and timeouts do, and then needs a new request to complete.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from pervasive.chain import open_ledger
from pervasive.config import Settings

pytestmark = pytest.mark.anvil


async def test_requests_cancelled_mid_flight_do_not_stall_later_ones(tmp_path: Path) -> None:
    ledger = await open_ledger(Settings(home=tmp_path, backend="anvil"), persist=False)
    try:
        rng = random.Random(7)
        for _ in range(30):
            requests = [asyncio.create_task(ledger.rpc.block_number()) for _ in range(40)]
            await asyncio.sleep(rng.uniform(0, 0.01))
            for request in requests:
                request.cancel()
            await asyncio.gather(*requests, return_exceptions=True)
        async with asyncio.timeout(10):
            assert await ledger.rpc.block_number() >= 0
    finally:
        await ledger.close()
