"""Fixtures of the intermediate-node tests: a session artifact cache and the harness factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from node_harness import Harness

from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings


@pytest.fixture
async def chain(tmp_settings: Settings) -> AsyncIterator[Ledger]:
    """A throwaway embedded chain."""
    ledger = await open_ledger(replace(tmp_settings, backend="embedded"), persist=False)
    try:
        yield ledger
    finally:
        await ledger.close()


@pytest.fixture
async def make(
    chain: Ledger, tmp_path: Path, artifacts: Path
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """``await make(nodes=3, ...)``: a provisioned agreement plus broker; closed afterwards."""
    made: list[Harness] = []

    async def make(**kwargs: Any) -> Harness:
        h = await Harness.create(chain, tmp_path, artifacts, **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        await h.close()
