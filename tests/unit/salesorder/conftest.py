"""The ``sale_world`` fixture: one :class:`SaleWorld` per test module (see salesorder_world)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from salesorder_world import SaleWorld, sale_world


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SaleWorld]:
    """Embedded chain, embedded broker, shadow service and the sale-order factory."""
    async with sale_world(tmp_path_factory.mktemp("sale-world")) as built:
        yield built
