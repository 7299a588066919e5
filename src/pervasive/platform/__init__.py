"""The composition root: settings in, running parts out (``Platform``), and the run file.

- :mod:`~pervasive.platform.composition`: :class:`Platform` builds the ledger, the CA,
  the broker and the shadow service from one :class:`~pervasive.config.Settings`,
  lazily and in dependency order, and stops them in reverse;
- :mod:`~pervasive.platform.run_file`: ``<home>/run.json``, what ``pervasive up`` runs
  and where, and the liveness check ``pervasive status`` makes.

This package sits below ``cli/`` and ``apps/`` and above every subsystem (see the
import-linter layers in ``pyproject.toml``). See README.md in this folder.
"""

from pervasive.platform.composition import (
    INTEROP_IDENTITY,
    OPERATOR_IDENTITY,
    SHADOW_IDENTITY,
    Part,
    Platform,
    RunningInterop,
    RunningShadow,
)
from pervasive.platform.run_file import (
    Endpoint,
    EndpointHealth,
    RunRecord,
    check,
    read_run_record,
    run_file,
    write_run_record,
)

__all__ = [
    "INTEROP_IDENTITY",
    "OPERATOR_IDENTITY",
    "SHADOW_IDENTITY",
    "Endpoint",
    "EndpointHealth",
    "Part",
    "Platform",
    "RunRecord",
    "RunningInterop",
    "RunningShadow",
    "check",
    "read_run_record",
    "run_file",
    "write_run_record",
]
