"""Fixtures for the CLI tests: a data directory whose artifact cache is already filled."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, artifacts: Path) -> Path:
    """A fresh data directory (cwd moved away from any ./pervasive.toml)."""
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "home"
    shutil.copytree(artifacts, target / "artifacts")
    return target
