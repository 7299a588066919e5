"""Shared fixtures of the service fault tests: a fresh anvil node per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    """A ledger on its own anvil node (reorganised by the test at will)."""
    chain = await open_ledger(Settings(home=tmp_path / "home", backend="anvil"), persist=False)
    try:
        yield chain
    finally:
        await chain.close()
