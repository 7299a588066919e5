"""Fixtures of the chain fault tests.

The counter contract lives in ``tests/integration/chain/chain_contract.py``; that folder
is put on ``sys.path`` here so both test folders share one copy.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "chain"))

from flaky_proxy import FlakyProxy

from pervasive.chain import Ledger


@pytest.fixture
async def flaky_proxy(ledger: Ledger) -> AsyncIterator[FlakyProxy]:
    """A :class:`FlakyProxy` in front of the ``ledger`` fixture's node."""
    assert ledger.url is not None
    proxy = FlakyProxy(ledger.url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
