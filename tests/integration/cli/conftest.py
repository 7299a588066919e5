"""Fixtures for the CLI tests: a data directory whose artifact cache is already filled."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pervasive.contracts import compile_contract


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding the compiled registry (compiling takes seconds)."""
    # Kept beside the per-session folders so that later runs skip compiling too; the
    # file name carries the source and vyper hash, so a stale artifact is never read.
    folder = tmp_path_factory.getbasetemp().parent / "pervasive-artifacts"
    compile_contract("registry", cache_dir=folder)
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compiled: Path) -> Path:
    """A fresh data directory (cwd moved away from any ./pervasive.toml)."""
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "home"
    shutil.copytree(compiled, target / "artifacts")
    return target
