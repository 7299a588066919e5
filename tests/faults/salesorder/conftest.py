"""The sale world of ``tests/unit/salesorder/salesorder_world.py`` for the door's crash tests:
anvil, mosquitto and the real gateway, and a shadow service the test stops and starts.

That module is loaded once under the name ``salesorder_world`` (the unit tests' conftest
imports it by that name too).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from pervasive.config import Settings
from pervasive.messaging import find_mosquitto

_NAME = "salesorder_world"
if _NAME not in sys.modules:
    _path = Path(__file__).parents[2] / "unit" / "salesorder" / f"{_NAME}.py"
    _spec = importlib.util.spec_from_file_location(_NAME, _path)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _module
    _spec.loader.exec_module(_module)

SaleWorld = sys.modules[_NAME].SaleWorld
sale_world = sys.modules[_NAME].sale_world
PASSWORD = sys.modules[_NAME].PASSWORD


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def crash_world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SaleWorld]:
    """anvil, mosquitto, the factory and the gateway; no shadow service (tests run theirs)."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    root = tmp_path_factory.mktemp("crash-world")
    settings = Settings(home=root, backend="anvil", broker="mosquitto", password=PASSWORD)
    async with sale_world(root, settings, gateway=True, shadow=False) as world:
        yield world
