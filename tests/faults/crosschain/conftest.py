"""The cross-chain harness of ``tests/integration/crosschain/conftest.py``, for fault tests.

That module is loaded once under the name ``crosschain_harness`` (its helpers import from
there) and its world fixtures are re-exported here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "crosschain_harness"
if _NAME not in sys.modules:
    _path = Path(__file__).parents[2] / "integration" / "crosschain" / "conftest.py"
    _spec = importlib.util.spec_from_file_location(_NAME, _path)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _module
    _spec.loader.exec_module(_module)

evm_world = sys.modules[_NAME].evm_world
