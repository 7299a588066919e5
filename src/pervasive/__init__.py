"""pervasive: IoT devices as parties of blockchain smart contracts.

The package is layered as ``ARCHITECTURE.md`` draws it; import a subsystem's public
names from the subsystem (``from pervasive.chain import Ledger``).
"""

from pervasive.errors import InternalError, PervasiveError, UserError

__all__ = ["InternalError", "PervasiveError", "UserError", "__version__"]

__version__ = "0.1.0"
