"""The sale world of ``tests/salesorder_world.py`` with anvil, mosquitto and the real gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from pervasive.config import Settings
from pervasive.messaging import find_mosquitto
from salesorder_world import PASSWORD, SaleWorld, sale_world


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway_world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SaleWorld]:
    """anvil, mosquitto, the shadow service, the factory and the gateway doors go through."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    root = tmp_path_factory.mktemp("gateway-world")
    settings = Settings(home=root, backend="anvil", broker="mosquitto", password=PASSWORD)
    async with sale_world(root, settings, gateway=True) as world:
        yield world
