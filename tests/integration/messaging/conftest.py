"""Fixtures of the messaging tests (helpers in ``messaging_platform.py``).

- ``platform``: CA + running broker, once per broker kind; mosquitto runs are marked
  ``mosquitto`` and skipped, with the reason, only when the binary is absent.
- ``mosquitto_platform``: the same, mosquitto only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from messaging_platform import NO_MOSQUITTO, Platform, _platform, needs_mosquitto

from pervasive.messaging import find_mosquitto


@pytest.fixture(params=["embedded", pytest.param("mosquitto", marks=needs_mosquitto)])
async def platform(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Platform]:
    async for value in _platform(request.param, tmp_path):
        yield value


@pytest.fixture
async def mosquitto_platform(tmp_path: Path) -> AsyncIterator[Platform]:
    if find_mosquitto() is None:
        pytest.skip(NO_MOSQUITTO)
    async for value in _platform("mosquitto", tmp_path):
        yield value
