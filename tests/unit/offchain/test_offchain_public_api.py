"""The public surface of pervasive.crypto and pervasive.offchain is what __all__ says."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["pervasive.crypto", "pervasive.offchain"])
def test_all_names_resolve_once(package: str) -> None:
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(module, name) is not None
