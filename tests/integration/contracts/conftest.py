"""Fixtures for the contract tests: the compiled registry and a freshly deployed one.

``ledger`` (a throwaway chain on embedded and on anvil) comes from ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pervasive.chain import Ledger
from pervasive.contracts import Registry


@pytest.fixture
async def registry(ledger: Ledger, artifacts: Path) -> Registry:
    """A registry freshly deployed by development account 0."""
    return await Registry.open(ledger, ledger.dev_signer(0), artifacts=artifacts)
