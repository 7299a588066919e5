"""Fixtures for the contract tests: the compiled registry and a freshly deployed one.

``ledger`` (a throwaway chain on embedded and on anvil) comes from ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pervasive.chain import Ledger
from pervasive.contracts import Registry, compile_contract


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding the compiled registry (compiling takes seconds)."""
    # Kept beside the per-session folders so that later runs skip compiling too; the
    # file name carries the source and vyper hash, so a stale artifact is never read.
    folder = tmp_path_factory.getbasetemp().parent / "pervasive-artifacts"
    compile_contract("registry", cache_dir=folder)
    return folder


@pytest.fixture
async def registry(ledger: Ledger, artifacts: Path) -> Registry:
    """A registry freshly deployed by development account 0."""
    return await Registry.open(ledger, ledger.dev_signer(0), artifacts=artifacts)
