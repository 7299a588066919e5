"""pervasive: IoT devices as parties of blockchain smart contracts.

The package is layered as ``ARCHITECTURE.md`` draws it; import a subsystem's public
names from the subsystem (``from pervasive.chain import Ledger``). What users touch
first is here: :class:`Platform`, the composition root that builds the ledger, the
CA, the broker and the shadow service from settings.

Example::

    from pervasive import Platform, load_settings

    async with Platform(load_settings(), password="s3cret") as platform:
        await platform.start("ledger", "broker", "shadow")
"""

from pervasive.config import Settings, load_settings
from pervasive.errors import InternalError, PervasiveError, UserError
from pervasive.platform import Platform

__all__ = [
    "InternalError",
    "PervasiveError",
    "Platform",
    "Settings",
    "UserError",
    "__version__",
    "load_settings",
]

__version__ = "0.1.0"
