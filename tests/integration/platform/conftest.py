"""Fixtures of the platform tests: the SSE reader lives in ``tests/integration/interop/sse.py``;
that folder is put on ``sys.path`` here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
