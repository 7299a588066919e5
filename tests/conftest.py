"""Shared fixtures for every test folder.

- ``tmp_settings``: :class:`~pervasive.config.Settings` whose data directory is a fresh
  temporary folder; nothing is read from the environment or a ``pervasive.toml``.
  Change a field with ``dataclasses.replace(tmp_settings, backend="anvil")``.
- ``ledger``: a fresh, throw-away chain (``persist=False``) with funded development
  accounts (``ledger.dev_signer(i)``), once per backend: ``embedded`` (py-evm in this
  process) and ``anvil`` (a real node, marked ``anvil``; deselect with ``-m "not anvil"``).
  Closed (and the node stopped) after the test.
- ``artifacts``: a folder holding the compiled registry, agreement and factory. It sits
  beside pytest's per-run folders so xdist workers and later runs share it; the file
  names carry the source and vyper hash, so a stale artifact is never read.

Example::

    async def test_balance(ledger):
        assert await ledger.balance(ledger.dev_signer(0).address) > 0
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings
from pervasive.contracts import compile_contract

COMPILED = (
    "registry",
    "agreement",
    "agreement_factory",
    "sale_order",
    "sale_order_factory",
    "contract_database",
    "oracle_hub",
    "asset_tracking",
)


@pytest.fixture
def tmp_settings(tmp_path: Path) -> Settings:
    """Default settings inside a temporary data directory (embedded backend)."""
    return Settings(home=tmp_path / "home")


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
async def ledger(request: pytest.FixtureRequest, tmp_settings: Settings) -> AsyncIterator[Ledger]:
    """A fresh chain on each backend, closed after the test."""
    chain = await open_ledger(replace(tmp_settings, backend=request.param), persist=False)
    try:
        yield chain
    finally:
        await chain.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled platform contracts (compiling takes seconds, so once per machine)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # a worker's popen-gwN folder sits in the run's folder
    folder = base.parent / "pervasive-artifacts"
    for name in COMPILED:
        compile_contract(name, cache_dir=folder)
    return folder
