"""Fixtures of the interop tests: the ``quotes`` contract helper lives in
``tests/integration/interop/quotes.py``; that folder is put on ``sys.path`` here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "interop"))
