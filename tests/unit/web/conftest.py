"""Fixtures of the web app's tests: one world (chain, factory, keystore, app) per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web_world import WebWorld, web_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[WebWorld]:
    """The embedded chain with a sale-order factory and the web app over it."""
    with web_world(tmp_path_factory.mktemp("web"), artifacts) as built:
        yield built
